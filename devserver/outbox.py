"""`GET /_local/outbox`: every email the service sent through SES (moto, in this process), oldest first,
one entry per recipient, rendered from the templates SES holds (the ones template.yaml declares).

moto stores a templated send as the template's name and its data, and its own renderer does not
escape; SES renders with Handlebars, which HTML-escapes `{{name}}` and leaves `{{{name}}}` as is. Our
templates use only those two forms (tests/unit/test_mail_templates.py), so jinja2 with autoescape
renders them as SES does: `{{name}}` is escaped, `{{{name}}}` becomes `{{ name|safe }}`. One known
difference: Handlebars also escapes "`" and "=", which markupsafe leaves alone.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import jinja2

from devserver.stack import ACCOUNT, REGION

_TRIPLE = re.compile(r"\{\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\}")
# Missing names render empty, as in Handlebars; the final newline stays, as SES keeps it.
_environment = jinja2.Environment(autoescape=True, keep_trailing_newline=True)


def to_jinja(source: str) -> str:
    return _TRIPLE.sub(r"{{ \1|safe }}", source)


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> jinja2.Template:
    return _environment.from_string(to_jinja(source))


def render(source: str | None, data: dict[str, Any]) -> str | None:
    if source is None:
        return None
    return _compiled(source).render(**data)


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _to_addresses(destination: Any) -> list[str]:
    return list((destination or {}).get("ToAddresses") or [])


def _backend() -> Any:
    from moto.ses.models import ses_backends

    return ses_backends[ACCOUNT][REGION]


def _templated(message: Any, templates: dict[str, Any]) -> list[dict[str, Any]]:
    template = templates.get(message.template) or {}
    default = _json(message.template_data)
    # SendBulkTemplatedEmail: a list of destinations, each with its own data; SendTemplatedEmail: one.
    if isinstance(message.destinations, list):
        parts = [
            (_to_addresses(d.get("Destination")), _json(d.get("ReplacementTemplateData"))) for d in message.destinations
        ]
    else:
        parts = [(_to_addresses(message.destinations), {})]
    mails = []
    for addresses, replacement in parts:
        data = {**default, **replacement}
        for address in addresses:
            mails.append(
                {
                    "from": message.source,
                    "to": [address],
                    "subject": render(template.get("subject_part"), data) or "",
                    "html": render(template.get("html_part"), data),
                    "text": render(template.get("text_part"), data),
                    "template": message.template,
                }
            )
    return mails


def sent() -> list[dict[str, Any]]:
    """What SES was asked to send, as `{from, to: [one address], subject, html, text}` per recipient."""
    from moto.ses.models import Message, TemplateMessage

    from devserver.aws import request_lock

    with request_lock():  # a consistent snapshot while other requests may be sending
        backend = _backend()
        messages = list(backend.sent_messages)
        templates = dict(backend.templates)
    mails: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, TemplateMessage):
            mails.extend(_templated(message, templates))
        elif isinstance(message, Message):
            body = message.body if isinstance(message.body, str) else None
            for address in _to_addresses(message.destinations):
                mails.append(
                    {"from": message.source, "to": [address], "subject": message.subject, "html": None, "text": body}
                )
    return mails
