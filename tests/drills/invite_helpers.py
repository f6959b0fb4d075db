"""Shared by the invite drills: one moto per test module with the AppSync stand-in in-process, a frozen clock
per test (each test on a day of its own, so no bucket or claim carries over), and what SES and the tables hold.

One moto per module instead of one per test keeps a few hundred drill cases within seconds.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from devserver import aws
from devserver.stack import ACCOUNT, REGION, Stack
from referrals import emails, storage
from referrals.ratelimit import Bucket
from tests.drills.test_fuzz_api import LEAKS

SEND = "mutation S($a: [String!]!) { sendReferralEmail(emailAddresses: $a) }"
OFFER = "query O($code: String!) { referralOffer(code: $code) { valid code referrerFirstName siteName offerText } }"
REGISTER = "mutation R($input: RegistrationInput!) { register(input: $input) { customer { referralCode } error } }"

_days = itertools.count()
_base = datetime.now(UTC).replace(microsecond=0)


def next_day() -> datetime:
    """A moment a day after the previous test's: buckets are full again, and nothing else is shared."""
    return _base + timedelta(days=next(_days), hours=1)


@dataclass
class Env:
    stack: Stack
    stand_in: Any

    def call(
        self,
        query: str,
        variables: dict[str, Any] | None,
        customer_id: str | None,
        email: str = "me@example.com",
        site: str | None = "default",
        source_ip: str = "203.0.113.7",
        headers: dict[str, str] | None = None,
        iam: bool = False,
    ) -> dict[str, Any]:
        """One GraphQL request as AppSync hands it on: a signed-in customer, or (customer_id None) an API-key
        caller with a null identity and only X-Forwarded-For to tell where it came from, or an IAM-signed server."""
        from devserver.appsync import RequestContext, source_ips

        sent = {k.lower(): v for k, v in (headers or {}).items()}
        # identity.sourceIp: what the client wrote into X-Forwarded-For, then the connection's address
        seen = source_ips([sent["x-forwarded-for"]] if sent.get("x-forwarded-for") else [], source_ip)
        # AppSync's edge appends the viewer's address and then its own to what the client sent (docs/invites.md)
        sent["x-forwarded-for"] = ", ".join([*filter(None, [sent.get("x-forwarded-for")]), source_ip, "127.0.0.1"])
        if iam:
            identity = {"accountId": ACCOUNT, "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Server/x"}
            context = RequestContext({**identity, "sourceIp": seen}, sent, {}, auth_mode="AWS_IAM")
        elif customer_id is None:
            context = RequestContext(None, sent, {}, auth_mode="API_KEY")
        else:
            claims = {"sub": customer_id, "email": email, **({"custom:site": site} if site else {})}
            identity = {"sub": customer_id, "claims": claims, "sourceIp": seen, "defaultAuthStrategy": "ALLOW"}
            context = RequestContext(identity, sent, {})
        return self.stand_in.execute({"query": query, "variables": variables or {}}, context)


@contextmanager
def stack_env(parameters: dict[str, str] | None = None) -> Iterator[Env]:
    """moto provisioned from template.yaml (with these parameters), the functions and the AppSync stand-in."""
    from devserver.appsync import AppSyncStandIn, load_schema
    from devserver.lambdas import LocalFunction

    stack = Stack(parameters or {})
    saved = dict(os.environ)
    os.environ.update(stack.environment())  # the functions read their settings at import, as at a cold start
    mock = aws.start_moto()
    try:
        aws.provision(stack)
        functions = {name: LocalFunction(spec) for name, spec in stack.functions().items()}
        api = stack.api_settings()
        stand_in = AppSyncStandIn(
            load_schema(stack.schema_path().read_text()),
            {key: functions[name] for key, name in stack.resolvers().items()},
            {k: int(api.get(k, 0)) for k in ("QueryDepthLimit", "ResolverCountLimit")},
            introspection=False,
        )
        yield Env(stack, stand_in)
    finally:
        mock.stop()
        os.environ.clear()
        os.environ.update(saved)


def register(env: Env, customer_id: str, email: str, name: str = "Alice Smith", site: str = "default") -> str:
    answer = env.call(REGISTER, {"input": {"fullName": name}}, customer_id, email, site)
    assert answer["data"]["register"]["error"] is None, answer
    return answer["data"]["register"]["customer"]["referralCode"]


# ---------- what SES was asked to send, and what the tables hold ----------


def ses_destinations() -> list[dict[str, list[str]]]:
    """Every destination moto's SES recorded (one per message of a bulk send), each as given to SES."""
    from moto.ses.models import ses_backends

    with aws.request_lock():
        messages = list(ses_backends[ACCOUNT][REGION].sent_messages)
    found: list[dict[str, list[str]]] = []
    for message in messages:
        destinations = message.destinations
        for destination in destinations if isinstance(destinations, list) else [{"Destination": destinations}]:
            found.append({k: list(v) for k, v in (destination.get("Destination") or destination).items()})
    return found


def mails_to(address: str) -> int:
    return sum(1 for d in ses_destinations() if d.get("ToAddresses") == [address])


def spent(key: str, bucket: Bucket, now: datetime) -> int:
    """Tokens a bucket holds spent at `now`: its TAT's lead over now, in whole intervals."""
    try:
        tat = int(storage.BucketItem.get(f"BUCKET#{key}").tat or 0)
    except storage.BucketItem.DoesNotExist:
        return 0
    lead = tat - int(now.timestamp() * 1000)
    assert lead <= 0 or lead % bucket.interval_ms == 0, lead
    return max(0, lead) // bucket.interval_ms


def claimed_by(customer_id: str, address: str, site: str = "default") -> bool:
    key = storage.AddressItem.key_for(site, emails.identity_hash(address))
    try:
        return storage.AddressItem.get(key).invited_by == customer_id
    except storage.AddressItem.DoesNotExist:
        return False


def _without_echoes(answer: dict[str, Any]) -> str:
    """The answer as text, less the addresses it names back to the caller (theirs to write: `a.py@aa.org` is no
    leak), wherever they appear: the lists of errorInfo and the message that quotes them."""
    text = json.dumps(answer)
    echoed = [
        entry.get("address")
        for error in answer.get("errors") or []
        for listed in ("notSent", "invalidAddresses")
        for entry in (error.get("errorInfo") or {}).get(listed) or []
    ]
    for address in sorted({a for a in echoed if isinstance(a, str) and a}, key=len, reverse=True):
        for form in {json.dumps(address)[1:-1], json.dumps(json.dumps(address))[3:-3]}:
            text = text.replace(form, "")
    return text


def clean(answer: dict[str, Any]) -> list[str]:
    """No stack trace, internal name or InternalFailure in an answer: the error types the client was given."""
    text = _without_echoes(answer)
    assert not any(leak in text for leak in LEAKS), text[:500]
    types = [error["errorType"] for error in answer.get("errors") or []]
    assert "InternalFailure" not in types, answer
    return types


def not_sent(answer: dict[str, Any]) -> dict[str, str]:
    return {
        entry["address"]: entry["reason"]
        for error in answer.get("errors") or []
        if error["errorType"] == "InvitationsNotSent"
        for entry in error["errorInfo"]["notSent"]
    }
