// The local console: every step of the programme against the local server, in plain JavaScript.
// Data from the server is only ever put into the page as text (textContent), never as HTML;
// mail HTML is shown only inside sandboxed frames.
"use strict";

const $ = (id) => document.getElementById(id);
const IDENTITY = "referrals.console.identity";
const CLOCK = "referrals.console.clock";
const PAGE_SIZE = 10;

let identity = null; // {sub, email, site}
let token = null;
let referralsOffset = 0;

// ---------- small helpers ----------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function say(id, text, kind = "") {
  const node = $(id);
  node.className = `status ${kind}`.trim();
  node.textContent = text;
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

// "2 hours 5 minutes", "45 seconds": a span as a person reads it, in its two largest units. A wait is
// rounded up (nobody who waits as told is refused again); other spans to the nearest.
function duration(seconds, round = Math.ceil) {
  const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  const total = Math.max(1, round(Number(seconds)));
  const words = (count, name) => (count ? `${count} ${name}${count === 1 ? "" : "s"}` : "");
  const big = units.findIndex(([, size]) => total >= size);
  if (big === units.length - 1) return words(total, "second");
  const [[bigName, bigSize], [smallName, smallSize]] = [units[big], units[big + 1]];
  const inSmall = round(total / smallSize);
  if (inSmall * smallSize >= units[Math.max(0, big - 1)][1] && big > 0) return duration(inSmall * smallSize, round);
  const ratio = bigSize / smallSize;
  return [words(Math.floor(inSmall / ratio), bigName), words(inSmall % ratio, smallName)].filter(Boolean).join(" ");
}

async function local(method, path, body) {
  const answer = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await answer.json();
  } catch {
    data = null;
  }
  return { status: answer.status, data };
}

let config = null;
async function apiConfig() {
  if (!config) config = (await local("GET", "/_local/config")).data || { graphqlUrl: "/graphql" };
  return config;
}

// One GraphQL call. auth: "token" (the signed-in customer), "apiKey" (a visitor) or "none".
async function gql(query, variables = {}, auth = "token") {
  const { graphqlUrl, apiKey } = await apiConfig();
  const send = async () => {
    const headers = { "Content-Type": "application/json" };
    if (auth === "token" && token) headers.Authorization = token;
    if (auth === "apiKey" && apiKey) headers["x-api-key"] = apiKey;
    const answer = await fetch(graphqlUrl, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
    return { status: answer.status, body: await answer.json() };
  };
  let result = await send();
  if (result.status === 401 && auth === "token" && identity) {
    // Local tokens last an hour: mint a fresh one for the same identity and try once more.
    token = await LocalAuth.signIn(identity.sub, identity.email, identity.site);
    result = await send();
  }
  return result;
}

function firstError(body) {
  return (body && body.errors && body.errors[0]) || null;
}

function describeError(error) {
  const type = error.errorType ? ` (${error.errorType})` : "";
  return `${error.message || "The request was refused"}${type}`;
}

// ---------- 1. sign in ----------

async function signIn(sub, email, site) {
  say("who-status", "Signing in…");
  try {
    token = await LocalAuth.signIn(sub, email, site);
  } catch (error) {
    say("who-status", `Could not sign in: ${error.message}`, "bad");
    return;
  }
  identity = { sub, email, site: site || "default" };
  sessionStorage.setItem(IDENTITY, JSON.stringify(identity));
  say("who-status", `Signed in as ${sub} (${email}) on site ${identity.site}.`, "ok");
  $("sign-out").hidden = false;
  showPeople();
  referralsOffset = 0;
  loadPublished();
  await loadCustomer();
}

function signOut() {
  identity = null;
  token = null;
  sessionStorage.removeItem(IDENTITY);
  $("sign-out").hidden = true;
  say("who-status", "Signed out.");
  $("customer-box").hidden = true;
  $("register").hidden = true;
  say("code-status", "Sign in to see your code.");
  say("register-status", "");
  $("referrals-box").hidden = true;
  $("referrals-pager").hidden = true;
  say("referrals-status", "Sign in to see your referrals.");
}

function showPeople() {
  const people = LocalAuth.people();
  const list = $("people");
  list.replaceChildren();
  for (const person of people) {
    const label = person.name ? `${person.name} (${person.email})` : `${person.sub} (${person.email})`;
    const button = el("button", { type: "button", class: "secondary", text: label });
    button.dataset.sub = person.sub;
    button.addEventListener("click", () => {
      $("sign-in-sub").value = person.sub;
      $("sign-in-email").value = person.email;
      $("sign-in-site").value = person.site || "default";
      signIn(person.sub, person.email, person.site);
    });
    list.append(el("li", {}, button));
  }
  $("people-box").hidden = people.length === 0;
  const options = $("known-people");
  options.replaceChildren(...people.map((p) => el("option", { value: p.sub, label: p.name || p.email })));
  const fill = $("order-people");
  fill.replaceChildren();
  for (const person of people) {
    const button = el("button", { type: "button", class: "secondary", text: person.name || person.sub });
    button.setAttribute("aria-label", `Order as ${person.name || person.sub} (${person.email})`);
    button.addEventListener("click", () => ($("order-customer").value = person.sub));
    fill.append(el("li", {}, button));
  }
}

// ---------- 2. the customer: code, count, link, share ----------

const CUSTOMER = `query ConsoleCustomer {
  customer { referralCode referralCount referralCounts { count siteKey } referralLink socialReferralMethods { type url } }
}`;

const METHOD_NAMES = { EMAIL: "email", FACEBOOK: "Facebook", MESSENGER: "Messenger", SMS: "text message", TWITTER: "X (Twitter)", VK: "VK", WEIBO: "Weibo", WHATSAPP: "WhatsApp" };

async function loadCustomer() {
  if (!identity) return;
  say("code-status", "Loading…");
  const { body } = await gql(CUSTOMER);
  const error = firstError(body);
  if (error) {
    say("code-status", describeError(error), "bad");
    return;
  }
  const customer = body.data && body.data.customer;
  $("customer-box").hidden = !customer;
  $("register").hidden = Boolean(customer);
  if (!customer) {
    say("code-status", `${identity.sub} has no account on this site yet.`, "warn");
    $("referrals-box").hidden = true;
    say("referrals-status", "No account yet, so no referrals.");
    return;
  }
  say("code-status", "");
  $("referral-code").textContent = customer.referralCode;
  $("referral-count").textContent = String(customer.referralCount);
  $("referral-counts").replaceChildren(
    ...customer.referralCounts.map((entry) => el("li", { text: `${entry.siteKey}: ${entry.count}` })),
  );
  $("referral-link").textContent = customer.referralLink;
  $("referral-link").href = customer.referralLink;
  const share = $("share");
  share.replaceChildren();
  for (const method of customer.socialReferralMethods) {
    if (!method.url) continue;
    const name = METHOD_NAMES[method.type] || method.type;
    const link = el("a", { class: "button secondary", href: method.url, target: "_blank", rel: "noopener noreferrer", text: `Share by ${name}` });
    share.append(el("li", {}, link));
  }
  await loadReferrals();
}

function localLanding(link) {
  // The link points at the storefront's domain; the same page is served here for trying it.
  try {
    const url = new URL(link);
    const code = url.searchParams.get("applyCode");
    if (url.pathname.endsWith("/referrals.list") && code) return `/referrals.list?applyCode=${encodeURIComponent(code)}`;
  } catch {
    return null;
  }
  return null;
}

async function copyLink() {
  const link = $("referral-link").textContent;
  try {
    await navigator.clipboard.writeText(link);
    say("code-status", "Link copied.", "ok");
  } catch {
    say("code-status", "Copying is not allowed here: select the link and copy it yourself.", "warn");
  }
}

// ---------- register (the signed-in identity, with a friend's code) ----------

const REGISTER = `mutation ConsoleRegister($input: RegistrationInput!) {
  register(input: $input) { customer { referralCode } error fieldErrors { fieldName validators } newCustomer }
}`;

async function register(event) {
  event.preventDefault();
  const input = { fullName: $("register-name").value };
  const code = $("register-code").value.trim();
  if (code) input.referralCode = code;
  say("register-status", "Registering…");
  const { body } = await gql(REGISTER, { input });
  const error = firstError(body);
  if (error) return say("register-status", describeError(error), "bad");
  const outcome = body.data.register;
  if (outcome.error) {
    const fields = (outcome.fieldErrors || []).map((f) => `${f.fieldName}: ${f.validators.join(", ")}`);
    return say("register-status", `Not registered: ${outcome.error}${fields.length ? ` (${fields.join("; ")})` : ""}.`, "bad");
  }
  LocalAuth.remember({ ...identity, name: input.fullName });
  showPeople();
  say("register-status", `Registered. ${input.referralCode ? `Linked to the code ${input.referralCode.toUpperCase()}.` : ""}`, "ok");
  await loadCustomer();
}

// ---------- choose a code (changeReferralCode) ----------

const CHANGE_CODE = `mutation ConsoleChangeCode($code: String!) {
  changeReferralCode(code: $code) { customer { referralCode } error fieldErrors { fieldName validators } }
}`;

const CODE_ERRORS = {
  CODE_TAKEN: "Someone holds that code (or one that differs only by 0/O or 1/I/L).",
  TOO_SOON: "You changed your code recently: try again later.",
  NO_ACCOUNT: "This identity has no account on this site.",
};

async function changeCode(event) {
  event.preventDefault();
  say("change-code-status", "Changing…");
  const { body } = await gql(CHANGE_CODE, { code: $("change-code-input").value });
  const error = firstError(body);
  if (error) return say("change-code-status", describeError(error), "bad");
  const outcome = body.data.changeReferralCode;
  if (outcome.error) {
    const why = (outcome.fieldErrors || []).map((f) => f.validators.join(", ")).join("; ");
    return say("change-code-status", CODE_ERRORS[outcome.error] || `Not changed: ${outcome.error}${why ? ` (${why})` : ""}.`, "bad");
  }
  say("change-code-status", `Your code is now ${outcome.customer.referralCode}; the old one keeps working.`, "ok");
  $("change-code-input").value = "";
  await loadCustomer();
}

// ---------- 9. the programme's figures ----------

const FUNNEL = [
  ["invitesSent", "Invites sent"],
  ["offerLookups", "Code lookups"],
  ["signUpsWithCode", "Sign-ups with a code"],
  ["firstQualifyingOrders", "First qualifying orders"],
  ["rewardsEarned", "Rewards earned"],
];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function percent(part, whole) {
  return whole ? `${Math.round((100 * part) / whole)}%` : "–";
}

function drawFunnel(totals) {
  const width = 640, row = 30, label = 180, room = width - label - 60;
  const top = Math.max(1, ...FUNNEL.map(([key]) => totals[key]));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${row * FUNNEL.length + 8}`, role: "img" });
  const summary = FUNNEL.map(([key, name]) => `${name} ${totals[key]}`).join(", ");
  chart.setAttribute("aria-label", `Funnel: ${summary}`);
  const rows = $("funnel-rows");
  rows.replaceChildren();
  FUNNEL.forEach(([key, name], index) => {
    const value = totals[key];
    const y = index * row + 4;
    const bar = Math.max(value ? 2 : 0, (room * value) / top);
    chart.append(svg("text", { x: 0, y: y + 18 }, name));
    chart.append(svg("rect", { class: `bar${key === "rewardsEarned" ? " earned" : ""}`, x: label + (room - bar) / 2, y, width: bar, height: row - 8 }));
    chart.append(svg("text", { x: label + room + 8, y: y + 18 }, String(value)));
    const before = index ? totals[FUNNEL[index - 1][0]] : null;
    rows.append(el("tr", {}, el("td", { text: name }), el("td", { text: String(value) }), el("td", { text: index ? percent(value, before) : "" })));
  });
  rows.append(el("tr", {}, el("td", { text: "Rewards reversed" }), el("td", { text: String(totals.rewardsReversed) }), el("td", { text: "" })));
  $("funnel").replaceChildren(chart);
}

function drawDaily(days) {
  const series = [["signUpsWithCode", "bar", "Sign-ups"], ["firstQualifyingOrders", "bar", "First orders"], ["rewardsEarned", "bar earned", "Rewards"]];
  const width = 640, height = 160, left = 28, bottom = 20;
  const top = Math.max(1, ...days.flatMap((day) => series.map(([key]) => day.figures[key])));
  const slot = (width - left) / Math.max(1, days.length);
  const bar = Math.max(1, slot / (series.length + 1));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 20}`, role: "img" });
  const busiest = days.reduce((best, day) => (day.figures.signUpsWithCode > (best ? best.figures.signUpsWithCode : -1) ? day : best), null);
  chart.setAttribute(
    "aria-label",
    `Per day from ${days[0].date} to ${days[days.length - 1].date}: sign-ups, first orders and rewards` +
      (busiest ? `; most sign-ups on ${busiest.date} (${busiest.figures.signUpsWithCode})` : ""),
  );
  chart.append(svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom }));
  chart.append(svg("text", { x: 0, y: 12 }, String(top)));
  chart.append(svg("text", { x: 0, y: height - bottom }, "0"));
  days.forEach((day, index) => {
    series.forEach(([key, kind], position) => {
      const value = day.figures[key];
      const tall = ((height - bottom - 16) * value) / top;
      const x = left + index * slot + position * bar;
      const rect = svg("rect", { class: kind, x, y: height - bottom - tall, width: bar, height: tall });
      rect.append(svg("title", {}, `${day.date} ${key}: ${value}`));
      chart.append(rect);
    });
  });
  chart.append(svg("text", { x: left, y: height + 4 }, days[0].date));
  chart.append(svg("text", { x: width - 80, y: height + 4 }, days[days.length - 1].date));
  series.forEach(([, kind, name], index) => {
    chart.append(svg("rect", { class: kind, x: left + index * 130, y: height + 8, width: 10, height: 10 }));
    chart.append(svg("text", { x: left + index * 130 + 14, y: height + 18 }, name));
  });
  $("daily").replaceChildren(chart);
}

async function loadFigures(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams({ site: $("figures-site").value || "default", from: $("figures-from").value, to: $("figures-to").value });
  say("figures-status", "Loading…");
  const { data } = await local("GET", `/_local/figures?${query}`);
  const error = firstError(data);
  if (error || !data || !data.data || !data.data.programmeStats) {
    $("figures-box").hidden = true;
    return say("figures-status", error ? describeError(error) : "No figures.", "bad");
  }
  const stats = data.data.programmeStats;
  drawFunnel(stats.totals);
  drawDaily(stats.days);
  $("figures-box").hidden = false;
  say("figures-status", `Site ${stats.siteKey}, ${stats.days.length} days.`, "ok");
}

async function setUpFigures() {
  const today = new Date();
  const monthAgo = new Date(today.getTime() - 29 * 86400000);
  $("figures-to").value = today.toISOString().slice(0, 10);
  $("figures-from").value = monthAgo.toISOString().slice(0, 10);
  const { sites } = await apiConfig();
  $("figures-site").replaceChildren(...(sites || ["default"]).map((key) => el("option", { value: key, text: key })));
  await loadFigures();
}

// ---------- 7. referrals ----------

function referralsQuery(offset, limit) {
  // Numbers only, so writing them into the query is safe (and fits Int or Int! arguments alike).
  return `query ConsoleReferrals {
  customer { referrals(offset: ${Number(offset)}, limit: ${Number(limit)}) { items { status createdAt friendName reason } total hasMore } }
}`;
}

// What each status and reason means, in words (schema.graphql documents them).
const STATUS_MEANING = {
  REGISTERED: "Signed up; no qualifying order yet",
  PENDING: "Qualifying order placed; waiting for its return window to close",
  EARNED: "Reward earned",
  REVERSED: "The qualifying order fell; a later order may still earn",
  EXPIRED: "No qualifying order in time",
  CAPPED: "The order stood, but this month's cap of rewards was reached",
  NOT_ELIGIBLE: "This referral can never earn",
};
const REASON_MEANING = {
  SELF_REFERRAL: "You cannot refer yourself",
  ORDER_BELOW_MINIMUM: "The order was below the minimum",
  ORDER_CURRENCY_NOT_ACCEPTED: "The order was in a currency that does not count",
  ORDER_CANCELLED: "The order was cancelled",
  ORDER_REFUNDED: "The order was refunded below the minimum",
  NO_QUALIFYING_ORDER: "No qualifying order in time",
  MONTHLY_CAP_REACHED: "This month's cap of rewards was reached",
  ORDER_OUTSIDE_QUALIFYING_PERIOD: "The order was outside the qualifying period",
};

function why(item) {
  if (!item.reason) return STATUS_MEANING[item.status] || "";
  return `${REASON_MEANING[item.reason] || item.reason} (${item.reason})`;
}

async function loadReferrals() {
  if (!identity) return;
  const { body } = await gql(referralsQuery(referralsOffset, PAGE_SIZE));
  const error = firstError(body);
  if (error) {
    $("referrals-box").hidden = true;
    return say("referrals-status", describeError(error), "bad");
  }
  const page = body.data && body.data.customer && body.data.customer.referrals;
  if (!page) {
    $("referrals-box").hidden = true;
    return say("referrals-status", "No account yet, so no referrals.");
  }
  const rows = $("referrals-rows");
  rows.replaceChildren();
  for (const item of page.items) {
    const badge = el("span", { class: `badge ${item.status}`, text: item.status });
    rows.append(
      el("tr", {},
        el("td", { text: item.friendName || "—" }),
        el("td", {}, badge),
        el("td", { text: why(item) }),
        el("td", {}, el("time", { datetime: item.createdAt, text: when(item.createdAt) })),
      ),
    );
  }
  $("referrals-box").hidden = page.items.length === 0;
  const first = page.items.length ? referralsOffset + 1 : 0;
  $("referrals-caption").textContent = `${first}–${referralsOffset + page.items.length} of ${page.total}`;
  say("referrals-status", page.total ? "" : "No friends have signed up with your code yet.");
  $("referrals-pager").hidden = !(page.hasMore || referralsOffset > 0);
  $("referrals-previous").disabled = referralsOffset === 0;
  $("referrals-next").disabled = !page.hasMore;
}

// ---------- 3. invites ----------

const INVITE = `mutation ConsoleInvite($emailAddresses: [String!]!) { sendReferralEmail(emailAddresses: $emailAddresses) }`;

function addresses(text) {
  return text.split(/[\s,;]+/).map((a) => a.trim()).filter(Boolean);
}

// The addresses an error names ({address, reason} lists), or any other detail, as a list.
function showErrorInfo(container, info) {
  if (!info || typeof info !== "object") return;
  const list = el("ul");
  for (const [key, value] of Object.entries(info)) {
    if (Array.isArray(value) && value.every((v) => v && v.address !== undefined)) {
      for (const { address, reason } of value) list.append(el("li", {}, el("strong", { text: address }), ` — ${reason}`));
    } else if (key !== "field") {
      list.append(el("li", { text: `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}` }));
    }
  }
  if (list.children.length) container.append(list);
}

async function invite(event) {
  event.preventDefault();
  if (!identity) return say("invite-status", "Sign in first.", "warn");
  const emailAddresses = addresses($("invite-addresses").value);
  if (!emailAddresses.length) return say("invite-status", "Enter at least one address.", "warn");
  say("invite-status", "Sending…");
  const { body } = await gql(INVITE, { emailAddresses });
  const error = firstError(body);
  const box = $("invite-status");
  if (error && error.errorType === "RateLimited") {
    const seconds = (error.errorInfo && error.errorInfo.retryAfterSeconds) || 0;
    const at = new Date(Date.now() + seconds * 1000);
    const time = el("time", { datetime: at.toISOString(), text: at.toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" }) });
    say("invite-status", `You have sent as many invites as you can for now. You can send more in ${duration(seconds)}, from `, "warn");
    box.append(time, ".");
    return;
  }
  if (!(body.data && body.data.sendReferralEmail === true)) {
    say("invite-status", error ? describeError(error) : "Nothing was sent.", "bad");
    if (error) showErrorInfo(box, error.errorInfo);
    return;
  }
  // true with a warning beside it: some addresses were skipped (recently invited, suppressed).
  const notSent = (error && error.errorInfo && error.errorInfo.notSent) || [];
  const count = new Set(emailAddresses.map((a) => a.toLowerCase())).size - notSent.length;
  say("invite-status", `Sent ${count} invite${count === 1 ? "" : "s"}. See them in the outbox below.`, notSent.length ? "warn" : "ok");
  if (notSent.length) {
    box.append(el("p", { text: "Not sent:" }));
    showErrorInfo(box, { notSent });
  }
  await loadOutbox();
}

// ---------- the clock ----------
// Kept as an offset from the real time, so "now" keeps moving (an order placed after a friend
// registered is after it) and "+15 days" stays fifteen days ahead.

let clockOffsetMs = Number(sessionStorage.getItem(CLOCK)) || 0;

function pad(n) {
  return String(n).padStart(2, "0");
}

function toInput(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function clockDate() {
  return new Date(Date.now() + clockOffsetMs);
}

function clockIso() {
  return clockDate().toISOString(); // with milliseconds: an order a moment after a registration is after it
}

function setClock(date) {
  clockOffsetMs = Math.abs(date.getTime() - Date.now()) < 1000 ? 0 : date.getTime() - Date.now();
  sessionStorage.setItem(CLOCK, String(clockOffsetMs));
  showClock();
}

function offsetText() {
  if (!clockOffsetMs) return "now";
  return `${duration(Math.abs(clockOffsetMs) / 1000, Math.round)} ${clockOffsetMs > 0 ? "from now" : "ago"}`;
}

function showClock() {
  if (document.activeElement !== $("clock")) $("clock").value = toInput(clockDate());
  $("clock-iso").textContent = `${clockIso()} (${offsetText()})`;
  $("order-time").textContent = `${clockDate().toLocaleString()} (${offsetText()})`;
  for (const button of document.querySelectorAll("[data-run-at]")) button.textContent = `Run ${button.dataset.logicalId} at this time (${offsetText()})`;
}

function shiftClock(event) {
  const shift = event.currentTarget.dataset.shift;
  setClock(shift === "now" ? new Date() : new Date(clockDate().getTime() + Number(shift) * 1000));
}

// ---------- 5. order events ----------

function newOrderId() {
  $("order-id").value = `order-${Math.random().toString(36).slice(2, 8)}`;
}

function orderTypeChanged() {
  const type = $("order-type").value;
  $("order-money").hidden = type === "OrderCancelled";
  for (const id of ["order-amount", "order-currency"]) $(id).disabled = type === "OrderCancelled";
  $("order-amount-label").textContent = type === "OrderRefunded" ? "Amount refunded" : "Order total";
}

async function sendOrder(event) {
  event.preventDefault();
  const type = $("order-type").value;
  const detail = { orderId: $("order-id").value.trim(), customerId: $("order-customer").value.trim() };
  const money = { amount: $("order-amount").value.trim(), currency: $("order-currency").value.trim().toUpperCase() };
  if (type === "OrderPlaced") detail.total = money;
  if (type === "OrderRefunded") detail.refund = money;
  const entry = { Source: "commerce.orders", DetailType: type, Detail: JSON.stringify(detail), Time: clockIso() };
  say("order-status", "Sending…");
  const { status, data } = await local("POST", "/_local/events", { Entries: [entry] });
  if (status === 404) return say("order-status", "This server has no /_local/events yet.", "bad");
  if (status !== 200) return say("order-status", `Refused (${status}): ${(data && data.message) || ""}`, "bad");
  if (data.FailedEntryCount) {
    const failed = data.Entries.find((e) => e.ErrorCode) || {};
    return say("order-status", `The event was not accepted: ${failed.ErrorCode || ""} ${failed.ErrorMessage || ""}`.trim(), "bad");
  }
  say("order-status", `${type} for order ${detail.orderId} of ${detail.customerId} at ${clockDate().toLocaleString()}: delivered.`, "ok");
  await Promise.all([loadPublished(), loadReferrals()]);
}

// ---------- 6. scheduled functions ----------

async function loadSchedules() {
  const { status, data } = await local("GET", "/_local/functions");
  const list = $("scheduled");
  list.replaceChildren();
  if (status !== 200) return say("schedule-status", `Could not list the functions (${status}).`, "bad");
  const scheduled = data.filter((fn) => fn.events.some((e) => e.type === "Schedule" || e.type === "ScheduleV2"));
  if (!scheduled.length) return say("schedule-status", "template.yaml declares no scheduled function yet.", "warn");
  for (const fn of scheduled) {
    const schedules = fn.events.filter((e) => e.type === "Schedule" || e.type === "ScheduleV2");
    const button = el("button", { type: "button" });
    button.dataset.runAt = "";
    button.dataset.logicalId = fn.logicalId;
    button.addEventListener("click", () => runScheduled(fn.logicalId));
    list.append(
      el("li", {},
        el("p", {}, el("strong", { text: fn.logicalId }), ` runs ${schedules.map((e) => e.expression).join(", ")}`),
        el("div", { class: "actions" }, button),
      ),
    );
  }
  showClock();
}

async function runScheduled(logicalId) {
  say("schedule-status", `Running ${logicalId}…`);
  const time = clockIso();
  const { status, data } = await local("POST", `/_local/invoke/${encodeURIComponent(logicalId)}`, { time });
  const result = $("schedule-result");
  result.hidden = false;
  result.textContent = pretty(data);
  if (status === 200) say("schedule-status", `${logicalId} ran as at ${clockDate().toLocaleString()}.`, "ok");
  else say("schedule-status", `${logicalId} failed: ${(data && (data.errorType || data.message)) || status} ${(data && data.errorMessage) || ""}`.trim(), "bad");
  await Promise.all([loadPublished(), loadReferrals()]);
}

// ---------- 4. outbox ----------

function inviteLinks(html) {
  // DOMParser builds an inert document: nothing in it runs or loads.
  const doc = new DOMParser().parseFromString(html || "", "text/html");
  const found = new Set();
  for (const anchor of doc.querySelectorAll("a[href]")) {
    const here = localLanding(anchor.getAttribute("href"));
    if (here) found.add(here);
  }
  return [...found];
}

// Each mail folds away (newest open); its frame is built when first opened, so a long outbox stays light.
async function loadOutbox() {
  const { status, data } = await local("GET", "/_local/outbox");
  const list = $("outbox-list");
  if (status === 404) return say("outbox-status", "This server has no /_local/outbox yet.", "bad");
  if (status !== 200) return say("outbox-status", `Could not read the outbox (${status}).`, "bad");
  say("outbox-status", data.length ? `${data.length} mail${data.length === 1 ? "" : "s"} sent, newest first.` : "No mail sent yet.");
  list.replaceChildren();
  [...data].reverse().forEach((mail, position) => {
    const to = (mail.to || []).join(", ");
    const body = el("div");
    const details = el("details", {}, el("summary", {}, el("strong", { text: mail.subject || "(no subject)" }), ` to ${to}`), body);
    const fill = () => {
      if (body.childElementCount) return;
      const frame = el("iframe", { class: "mail", sandbox: "", title: `The mail to ${to}: ${mail.subject}` });
      frame.srcdoc = mail.html || "";
      body.append(
        el("dl", { class: "facts" }, el("dt", { text: "From" }), el("dd", { text: mail.from || "" }), el("dt", { text: "To" }), el("dd", { text: to })),
        frame,
        el("details", {}, el("summary", { text: "Plain text" }), el("pre", { text: mail.text || "" })),
      );
    };
    details.addEventListener("toggle", () => details.open && fill());
    if (position === 0) {
      details.open = true;
      fill();
    }
    const links = inviteLinks(mail.html).map((href) =>
      el("a", { class: "button", href, "data-invite-link": "", text: `Open the invite's link here, as ${to}` }),
    );
    list.append(el("li", {}, details, el("div", { class: "actions" }, ...links)));
  });
}

// ---------- 8. published events ----------

function aboutMe(event) {
  // An event is about a customer when any of its ids is theirs (referrerId, refereeId, ...).
  return Boolean(identity) && JSON.stringify(event.Detail).includes(JSON.stringify(identity.sub));
}

async function loadPublished() {
  const { status, data } = await local("GET", "/_local/published");
  const list = $("published-list");
  if (status === 404) return say("published-status", "This server has no /_local/published yet.", "bad");
  if (status !== 200) return say("published-status", `Could not read the events (${status}).`, "bad");
  const mine = $("published-mine").checked && identity;
  const shown = [...data].reverse().filter((event) => !mine || aboutMe(event));
  const of = mine ? ` about ${identity.sub}` : "";
  say("published-status", shown.length ? `${shown.length} event${shown.length === 1 ? "" : "s"}${of}, newest first.` : `Nothing published${of} yet.`);
  list.replaceChildren();
  shown.forEach((event, position) => {
    const details = el("details", {},
      el("summary", {}, el("strong", { text: event.DetailType }), ` · ${event.Source} · ${when(event.Time)}`),
      el("pre", { text: pretty(event.Detail) }),
    );
    details.open = position < 5;
    list.append(el("li", { class: event.DetailType === "ReferralRewardEarned" ? "reward" : "" }, details));
  });
}

// ---------- GraphQL box ----------

async function runGraphql(event) {
  event.preventDefault();
  let variables;
  try {
    variables = JSON.parse($("graphql-variables").value || "{}");
  } catch {
    return say("graphql-status", "The variables are not valid JSON.", "bad");
  }
  const auth = $("graphql-auth").value;
  if (auth === "token" && !token) return say("graphql-status", "Sign in first, or call as a visitor.", "warn");
  const { status, body } = await gql($("graphql-query").value, variables, auth);
  say("graphql-status", `HTTP ${status}`, status === 200 && !firstError(body) ? "ok" : "bad");
  $("graphql-result").hidden = false;
  $("graphql-result").textContent = pretty(body);
}

// ---------- start ----------

function start() {
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("sign-in-sub").value.trim(), $("sign-in-email").value.trim(), $("sign-in-site").value.trim());
  });
  $("sign-out").addEventListener("click", signOut);
  $("register").addEventListener("submit", register);
  $("copy-link").addEventListener("click", copyLink);
  $("open-landing").addEventListener("click", () => {
    const here = localLanding($("referral-link").textContent);
    if (here) window.open(here, "_blank", "noopener");
  });
  $("invite-form").addEventListener("submit", invite);
  $("order-form").addEventListener("submit", sendOrder);
  $("order-type").addEventListener("change", orderTypeChanged);
  $("order-new").addEventListener("click", newOrderId);
  $("clock").addEventListener("change", () => {
    const chosen = new Date($("clock").value);
    if (!Number.isNaN(chosen.getTime())) setClock(chosen);
  });
  setInterval(showClock, 1000);
  for (const button of document.querySelectorAll("[data-shift]")) button.addEventListener("click", shiftClock);
  $("outbox-refresh").addEventListener("click", loadOutbox);
  $("published-refresh").addEventListener("click", loadPublished);
  $("published-mine").addEventListener("change", loadPublished);
  $("referrals-refresh").addEventListener("click", loadReferrals);
  $("referrals-previous").addEventListener("click", () => {
    referralsOffset = Math.max(0, referralsOffset - PAGE_SIZE);
    loadReferrals();
  });
  $("referrals-next").addEventListener("click", () => {
    referralsOffset += PAGE_SIZE;
    loadReferrals();
  });
  $("graphql-form").addEventListener("submit", runGraphql);
  $("change-code").addEventListener("submit", changeCode);
  $("figures-form").addEventListener("submit", loadFigures);

  showClock();
  newOrderId();
  orderTypeChanged();
  showPeople();
  loadSchedules();
  loadOutbox();
  loadPublished();
  setUpFigures();

  const saved = JSON.parse(sessionStorage.getItem(IDENTITY) || "null");
  if (saved) {
    $("sign-in-sub").value = saved.sub;
    $("sign-in-email").value = saved.email;
    $("sign-in-site").value = saved.site;
    signIn(saved.sub, saved.email, saved.site);
  }
}

document.addEventListener("DOMContentLoaded", start);
