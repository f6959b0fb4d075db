"""The invite's SES templates (mail/, included by template.yaml): safe to render, personal, and honest."""

from __future__ import annotations

import re

import pytest

from devserver.outbox import render
from devserver.stack import Stack
from referrals.config import DEFAULT_SITE, MailSettings
from referrals.invites import template_data

STACK = Stack()
TEMPLATES = {name: STACK.resolve(props["Template"]) for name, props in STACK.of_type("AWS::SES::Template").items()}
PLACEHOLDER = re.compile(r"\{\{\{?\s*([^}]*?)\s*\}?\}\}")
DATA_KEYS = set(template_data(DEFAULT_SITE, "Alice", "ABCD2345"))


def test_the_default_site_template_is_declared_in_template_yaml_from_mail():
    resource = STACK.resources["ReferralInviteTemplate"]["Properties"]["Template"]
    assert resource["Fn::Transform"]["Parameters"]["Location"] == "mail/ReferralInvite.yaml"
    names = {t["TemplateName"] for t in TEMPLATES.values()}
    assert MailSettings(template_prefix="local-").template_name(DEFAULT_SITE) in names


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=lambda t: t["TemplateName"])
def test_templates_use_only_plain_placeholders_that_the_data_fills(template):
    for part in ("SubjectPart", "HtmlPart", "TextPart"):
        for name in PLACEHOLDER.findall(template[part]):
            # No Handlebars helpers or blocks: the local renderer (jinja2) must render exactly as SES does
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), (part, name)
            assert name in DATA_KEYS, (part, name)
    # HTML escapes every value ({{x}}); never the raw triple-stash
    assert "{{{" not in template["HtmlPart"]
    # Subject and text are not HTML: SES would show "&amp;" there if they escaped
    assert "{{{" in template["SubjectPart"] and re.search(r"(?<!\{)\{\{[^{]", template["TextPart"]) is None


WHY = {
    "ReferralInviteTemplate": "You received this email because Alice",
    "ReferralInviteTemplateDe": "Du erhältst diese E-Mail, weil Alice",
}


def test_every_template_is_checked_for_its_footer():
    assert set(TEMPLATES) == set(WHY)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_invite_carries_the_link_the_code_and_why_the_friend_got_it(name):
    template = TEMPLATES[name]
    data = template_data(DEFAULT_SITE, "Alice", "ABCD2345")
    html, text = render(template["HtmlPart"], data), render(template["TextPart"], data)
    link = "https://shop.example.com/referrals.list?applyCode=ABCD2345"
    for body in (html, text):
        assert link in body and "ABCD2345" in body and "Alice" in body and "Example Shop" in body
        assert WHY[name] in body
    assert f'href="{link}"' in html


def test_names_are_escaped_in_html_and_kept_verbatim_in_text_and_subject():
    template = TEMPLATES["ReferralInviteTemplate"]
    data = template_data(DEFAULT_SITE, '<script>alert("x")</script>&Co', "ABCD2345")
    html = render(template["HtmlPart"], data)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;Co" in html
    assert '<script>alert("x")</script>&Co' in render(template["TextPart"], data)
    subject = render(template["SubjectPart"], data)
    assert subject.startswith("<script>") and "\n" not in subject and "\r" not in subject
