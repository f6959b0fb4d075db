"""Checks a page can be used without a mouse, without good eyesight and in a narrow window, run in
the page itself. They do not replace a person with a screen reader; they catch the common slips."""

from __future__ import annotations

from typing import Any

# Every visible form control has a label; every button and link has a name.
UNLABELLED = """
const visible = (el) => el.offsetParent !== null || el.getClientRects().length > 0;
const named = (el) => (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
  || (el.labels && el.labels.length && [...el.labels].some((l) => l.textContent.trim())));
const controls = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(visible).filter((el) => !named(el)).map((el) => el.outerHTML.slice(0, 120));
const actions = [...document.querySelectorAll('button, a[href]')].filter(visible)
  .filter((el) => !(el.textContent.trim() || el.getAttribute('aria-label'))).map((el) => el.outerHTML.slice(0, 120));
const frames = [...document.querySelectorAll('iframe')].filter((el) => !el.title)
  .map((el) => el.outerHTML.slice(0, 80));
return [...controls, ...actions, ...frames];
"""

# WCAG contrast of every visible piece of text against the background it sits on: 4.5:1, or 3:1
# for large text (24px, or 18.66px bold). Disabled controls are exempt, as WCAG says.
LOW_CONTRAST = """
const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return [0, 0, 0, 0];
  const p = m[1].split(',').map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
const lum = ([r, g, b]) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
const background = (el) => { for (let n = el; n; n = n.parentElement) {
  const c = parse(getComputedStyle(n).backgroundColor); if (c[3] > 0.5) return c; } return [255, 255, 255, 1]; };
const bad = [];
for (const el of document.querySelectorAll('body *')) {
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own || !(el.offsetParent !== null || el.getClientRects().length)) continue;
  if (el.closest('[disabled], [hidden], iframe, option')) continue;
  const style = getComputedStyle(el);
  const fg = parse(style.color), bg = background(el);
  const [a, b] = [lum(fg) + 0.05, lum(bg) + 0.05];
  const ratio = Math.max(a, b) / Math.min(a, b);
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  if (ratio < needed) bad.push(`${el.tagName}#${el.id} "${el.textContent.trim().slice(0, 40)}" ${ratio.toFixed(2)}`);
}
return bad;
"""

# Nothing wider than the window: no sideways scrolling of the page.
OVERFLOW = """
const width = document.documentElement.clientWidth;
if (document.documentElement.scrollWidth <= width) return [];
return [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > width + 1)
  .slice(0, 5).map((el) => `${el.tagName}#${el.id}.${el.className}`);
"""


def problems(driver: Any) -> dict[str, list[str]]:
    found = {
        "unlabelled": driver.execute_script(UNLABELLED),
        "low contrast": driver.execute_script(LOW_CONTRAST),
        "wider than the window": driver.execute_script(OVERFLOW),
    }
    return {name: items for name, items in found.items() if items}
