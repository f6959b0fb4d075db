"""The README's story against a running API: the first thing to run after a deploy (docs/deploy.md).

    python -m tests.smoke --url <GraphQLUrl> --api-key <PublicApiKeyValue> --token-a <ID token> --token-b <ID token>
    python -m tests.smoke --local http://127.0.0.1:4000          # against `make dev`

Customer A registers and reads their code; the public `referralOffer(code)` with the API key finds it; customer B
registers with A's code; A's `customer { referralCount referrals { ... } }` shows 1; B cannot register twice
(ACCOUNT_EXISTS). One line per step, PASS or FAIL with what was seen; the first failure ends the run.

Deployed, the two tokens are ID tokens (not access tokens) of two Cognito users of the storefront's app client that
have not registered yet, with different mailboxes (a +tag of one mailbox is a self-referral). Each run needs two
new users. Locally the script mints its own tokens for fresh ids and emails, so it can run again and again.

The API key and the tokens may also come from the environment (SMOKE_API_KEY, SMOKE_TOKEN_A, SMOKE_TOKEN_B), which
keeps them out of the shell's history and the process list. Neither is ever printed.

Exit status: 0 when every step passed, 1 when a step failed, 2 when the run could not start (bad arguments,
unusable tokens, users that have registered already).

Standard library only, Python 3.11 or later: it runs on any machine, without the project's virtual environment.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

PASSED, FAILED, NOT_STARTED = 0, 1, 2
TIMEOUT_S = 30
# The referrer's list is read from an index, which DynamoDB updates a moment after the write: ask again a while.
SETTLE_S = 10.0

CUSTOMER = "query SmokeCustomer { customer { referralCode referralCount } }"
REGISTER = """mutation SmokeRegister($input: RegistrationInput!) {
  register(input: $input) {
    customer { referralCode referralCount }
    error
    fieldErrors { fieldName validators }
    newCustomer
  }
}"""
OFFER = """query SmokeOffer($code: String!) {
  referralOffer(code: $code) { valid code referrerFirstName siteName offerText }
}"""
REFERRALS = """query SmokeReferrals {
  customer { referralCode referralCount referrals { items { status reason } total } }
}"""


class StepFailed(Exception):
    """A step saw something other than the story says; the message says what."""


class NotStarted(Exception):
    """The run cannot start: arguments, tokens, or users that have registered already."""


@dataclass
class Answer:
    status: int  # HTTP status; 0 when no answer came
    body: Any

    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or []) if isinstance(self.body, dict) else []

    def data(self, name: str) -> Any:
        data = self.body.get("data") if isinstance(self.body, dict) else None
        return data.get(name) if isinstance(data, dict) else None

    def describe(self) -> str:
        """What came back, short: the HTTP status and the errors' types and messages, or the data."""
        if self.status == 0:
            return str(self.body)
        errors = self.errors()
        if errors:
            said = "; ".join(f"{e.get('errorType') or 'Error'}: {e.get('message')}" for e in errors[:3])
            return f"HTTP {self.status}, {said}"
        if isinstance(self.body, dict) and "data" in self.body:
            return f"HTTP {self.status}, data {json.dumps(self.body['data'], separators=(',', ':'))}"
        return f"HTTP {self.status}, {json.dumps(self.body)[:300]}"


@dataclass
class Client:
    url: str
    secrets: list[str] = field(default_factory=list)

    def post(self, url: str, payload: Any, headers: dict[str, str]) -> Answer:
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                return Answer(answer.status, _json(answer.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, _json(error.read()))
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            return Answer(0, f"no answer from {url}: {reason}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None, **auth: str) -> Answer:
        headers = {}
        if "token" in auth:
            headers["Authorization"] = auth["token"]
        if "api_key" in auth:
            headers["x-api-key"] = auth["api_key"]
        return self.post(self.url, {"query": query, "variables": variables or {}}, headers)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw[:300].decode(errors="replace")


class Report:
    """One line per step, with every secret blanked out of whatever the server said."""

    def __init__(self, secrets: list[str], out: Any = None) -> None:
        self.secrets = [s for s in secrets if s]
        self.out = out or sys.stdout
        self.step = 0

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def line(self, verdict: str, title: str, seen: str) -> None:
        print(self.clean(f"{verdict} {self.step}. {title}: {seen}"), file=self.out, flush=True)

    def passed(self, title: str, seen: str) -> None:
        self.step += 1
        self.line("PASS", title, seen)

    def failed(self, title: str, seen: str) -> None:
        self.step += 1
        self.line("FAIL", title, seen)


# ---------- tokens: read, never checked (the server checks them), never printed ----------


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: enough to tell an access token, an expired token or one user twice."""
    parts = token.removeprefix("Bearer ").strip().split(".")
    if len(parts) != 3:
        raise NotStarted("a token is not a JWT (three base64url parts separated by dots)")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError as error:
        raise NotStarted("a token's payload is not base64url JSON") from error
    if not isinstance(payload, dict):
        raise NotStarted("a token's payload is not a JSON object")
    return payload


def mailbox(address: str) -> str:
    """One key per mailbox, as the service folds addresses for self-referral (case, +tags, Gmail's dots)."""
    local, _, domain = address.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in {"gmail.com", "googlemail.com"}:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def check_tokens(token_a: str, token_b: str) -> str:
    """Refuse, before anything is written, tokens that cannot tell the story; say what the tokens are."""
    a, b = claims_of(token_a), claims_of(token_b)
    now = time.time()
    for name, claims in (("A", a), ("B", b)):
        if claims.get("token_use") == "access":
            raise NotStarted(
                f"token {name} is an access token: give the ID token (IdToken of the sign-in's AuthenticationResult)"
            )
        if isinstance(claims.get("exp"), int | float) and claims["exp"] < now:
            raise NotStarted(
                f"token {name} expired {int(now - claims['exp'])} s ago: sign in again (ID tokens last 60 min)"
            )
        if not claims.get("sub") or not claims.get("email"):
            raise NotStarted(f"token {name} has no sub or no email claim: it is not a user pool ID token")
    if a["sub"] == b["sub"]:
        raise NotStarted("tokens A and B are the same user: give two users")
    if mailbox(str(a["email"])) == mailbox(str(b["email"])):
        raise NotStarted("users A and B share one mailbox (case, +tags, Gmail dots): B would be a self-referral")
    site_a, site_b = (c.get("custom:site") or "default (no custom:site claim)" for c in (a, b))
    note = f"two ID tokens, site {site_a}" if site_a == site_b else f"two ID tokens, sites {site_a} and {site_b}"
    return note


# ---------- local: `make dev` mints tokens and says its API key ----------


def local_setup(base: str, client: Client, site: str | None) -> tuple[str, str, str]:
    """The API key `make dev` serves (GET /_local/config) and two tokens for fresh identities (POST /_local/token)."""
    base = base.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/_local/config", timeout=TIMEOUT_S) as answer:
            config = json.loads(answer.read())
    except (OSError, ValueError) as error:
        raise NotStarted(
            f"no local server at {base} (GET /_local/config: {error}); start it with `make dev`"
        ) from error
    api_key = config.get("apiKey") if isinstance(config, dict) else None
    if not isinstance(api_key, str) or not api_key:
        raise NotStarted(f"{base}/_local/config gave no apiKey")
    run = uuid.uuid4().hex[:12]
    minted = []
    for who in ("a", "b"):
        body: dict[str, str] = {"sub": f"smoke-{who}-{run}", "email": f"smoke-{who}-{run}@example.com"}
        if site:
            body["site"] = site
        answer = client.post(f"{base}/_local/token", body, {})
        token = answer.body.get("token") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not isinstance(token, str):
            raise NotStarted(f"POST {base}/_local/token: {answer.describe()}")
        minted.append(token)
    return api_key, minted[0], minted[1]


# ---------- the story ----------


def refused(answer: Answer) -> str | None:
    """Why the API refused a token, when it did, said for a person who has to mend it."""
    if answer.status == 401 or any(e.get("errorType") == "UnauthorizedException" for e in answer.errors()):
        return (
            f"{answer.describe()}: the token is expired, not an ID token of the storefront's app client "
            "(StorefrontClientId), or of another user pool"
        )
    if any(e.get("errorType") == "Unauthorized" for e in answer.errors()):
        return f"{answer.describe()}: the API took the token but refused the field (an access token?)"
    return None


def preflight(client: Client, report: Report, token_a: str, token_b: str) -> None:
    """Both tokens are accepted and neither user has an account yet: otherwise nothing is written."""
    title = "both tokens accepted, neither user registered yet"
    for name, token in (("A", token_a), ("B", token_b)):
        answer = client.graphql(CUSTOMER, token=token)
        if answer.status == 0:
            report.failed(title, answer.describe())
            raise NotStarted(answer.describe())
        why = refused(answer)
        if why:
            report.failed(title, f"token {name}: {why}")
            raise NotStarted(f"token {name} refused")
        if answer.errors():
            report.failed(title, f"customer as {name}: {answer.describe()}")
            raise StepFailed(title)
        if answer.data("customer") is not None:
            code = answer.data("customer").get("referralCode")
            report.failed(
                title,
                f"user {name} has registered already (code {code}): the story needs two users who have never "
                "registered; create two new users and sign them in (docs/deploy.md, 'The first smoke test')",
            )
            raise NotStarted(f"user {name} registered already")
    report.passed(title, "customer is null for A and for B")


def register(client: Client, token: str, full_name: str, code: str | None = None) -> Answer:
    registration: dict[str, Any] = {"fullName": full_name}
    if code is not None:
        registration["referralCode"] = code
    return client.graphql(REGISTER, {"input": registration}, token=token)


def story(client: Client, report: Report, api_key: str, token_a: str, token_b: str) -> None:
    preflight(client, report, token_a, token_b)

    title = "A registers"
    answer = register(client, token_a, "Ada Smoketest")
    result = answer.data("register") or {}
    code = (result.get("customer") or {}).get("referralCode")
    if answer.errors() or result.get("error") or result.get("newCustomer") is not True or not code:
        report.failed(title, answer.describe())
        raise StepFailed(title)
    report.passed(title, f"newCustomer true, code {code}")

    title = "A reads their code"
    answer = client.graphql(CUSTOMER, token=token_a)
    customer = answer.data("customer") or {}
    if answer.errors() or customer.get("referralCode") != code or customer.get("referralCount") != 0:
        report.failed(title, f"expected code {code} and referralCount 0; {answer.describe()}")
        raise StepFailed(title)
    report.passed(title, f"code {code}, referralCount 0")

    title = "the public lookup finds A's code with the API key"
    answer = client.graphql(OFFER, {"code": code.lower()}, api_key=api_key)
    offer = answer.data("referralOffer") or {}
    if answer.status == 401:
        report.failed(title, f"{answer.describe()}: the API key is wrong or expired (stack output PublicApiKeyValue)")
        raise StepFailed(title)
    if answer.errors() or offer.get("valid") is not True or offer.get("code") != code:
        report.failed(title, f"expected valid true and code {code}; {answer.describe()}")
        raise StepFailed(title)
    if offer.get("referrerFirstName") != "Ada":
        report.failed(title, f"expected referrerFirstName Ada; {answer.describe()}")
        raise StepFailed(title)
    report.passed(
        title,
        f"valid true, referrer {offer.get('referrerFirstName')}, site {offer.get('siteName')!r}, "
        f"offer {offer.get('offerText')!r}",
    )

    title = "B registers with A's code"
    answer = register(client, token_b, "Bo Smoketest", code=f" {code.lower()} ")
    result = answer.data("register") or {}
    b_code = (result.get("customer") or {}).get("referralCode")
    if answer.errors() or result.get("error") or result.get("newCustomer") is not True or not b_code:
        seen = answer.describe()
        if "REFERRAL_CODE_OTHER_SITE" in seen:
            seen += " (A and B are users of different sites: give both users the same custom:site)"
        report.failed(title, seen)
        raise StepFailed(title)
    if b_code == code:
        report.failed(title, f"B was given A's code {code}")
        raise StepFailed(title)
    report.passed(title, f"newCustomer true, B's own code {b_code}")

    title = "A's customer shows 1 referral"
    deadline = time.monotonic() + SETTLE_S
    tries = 0
    while True:
        tries += 1
        answer = client.graphql(REFERRALS, token=token_a)
        customer = answer.data("customer") or {}
        page = customer.get("referrals") or {}
        statuses = [item.get("status") for item in page.get("items") or []]
        good = customer.get("referralCount") == 1 and page.get("total") == 1 and statuses == ["REGISTERED"]
        if good or answer.errors() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if not good:
        seen = answer.describe()
        reasons = [item.get("reason") for item in page.get("items") or []]
        if "SELF_REFERRAL" in reasons:
            seen += " (B's email is A's mailbox: a self-referral; use two mailboxes)"
        report.failed(title, f"expected referralCount 1, total 1, items [REGISTERED]; {seen}")
        raise StepFailed(title)
    after = f" (after {tries} reads: the index settles a moment after the write)" if tries > 1 else ""
    report.passed(title, f"referralCount 1, referrals total 1, items [REGISTERED]{after}")

    title = "B cannot register twice"
    answer = register(client, token_b, "Bo Smoketest", code=code)
    result = answer.data("register") or {}
    if answer.errors() or result.get("error") != "ACCOUNT_EXISTS" or result.get("newCustomer") is not False:
        report.failed(title, f"expected error ACCOUNT_EXISTS, newCustomer false; {answer.describe()}")
        raise StepFailed(title)
    report.passed(title, "error ACCOUNT_EXISTS, newCustomer false")

    title = "A still shows 1 referral"
    answer = client.graphql(CUSTOMER, token=token_a)
    customer = answer.data("customer") or {}
    if answer.errors() or customer.get("referralCount") != 1:
        report.failed(title, f"expected referralCount 1; {answer.describe()}")
        raise StepFailed(title)
    report.passed(title, "referralCount 1")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.smoke",
        description="Run the README's referral story against a deployed API, or against `make dev` with --local.",
    )
    parser.add_argument("--url", help="the GraphQL endpoint (stack output GraphQLUrl)")
    parser.add_argument("--api-key", default=os.environ.get("SMOKE_API_KEY"), help="stack output PublicApiKeyValue")
    parser.add_argument("--token-a", default=os.environ.get("SMOKE_TOKEN_A"), help="ID token of a new user (referrer)")
    parser.add_argument("--token-b", default=os.environ.get("SMOKE_TOKEN_B"), help="ID token of another new user")
    parser.add_argument("--local", metavar="BASE_URL", help="the base URL of `make dev`, e.g. http://127.0.0.1:4000")
    parser.add_argument("--site", help="with --local: the custom:site claim of the minted tokens (default site if not)")
    args = parser.parse_args(argv)
    for name in ("url", "local"):
        value = getattr(args, name)
        if value and not value.startswith(("https://", "http://")):
            parser.error(f"--{name} must be an http(s) URL")
    if args.local:
        if args.url:
            parser.error("give --local or --url, not both")
    else:
        missing = [f"--{n.replace('_', '-')}" for n in ("url", "api_key", "token_a", "token_b") if not getattr(args, n)]
        if missing:
            parser.error(f"missing {', '.join(missing)} (or --local <base URL of make dev>)")
        if args.site:
            parser.error("--site is for --local; deployed, the site is the users' custom:site attribute")
    return args


def main(argv: list[str] | None = None, out: Any = None) -> int:
    args = parse(argv)
    out = out or sys.stdout
    secrets = [s for s in (args.api_key, args.token_a, args.token_b) if s]
    report = Report(secrets, out)
    try:
        if args.local:
            base = args.local.rstrip("/")
            client = Client(f"{base}/graphql")
            api_key, token_a, token_b = local_setup(base, client, args.site)
            report.secrets += [api_key, token_a, token_b]
            print(report.clean(f"smoke test against {base}/graphql (local: tokens minted for fresh ids)"), file=out)
        else:
            client = Client(args.url)
            api_key, token_a, token_b = args.api_key, args.token_a, args.token_b
            note = check_tokens(token_a, token_b)
            print(report.clean(f"smoke test against {args.url} ({note})"), file=out)
        story(client, report, api_key, token_a, token_b)
    except NotStarted as problem:
        print(report.clean(f"NOT STARTED: {problem}"), file=out)
        return NOT_STARTED
    except StepFailed:
        print(f"smoke test FAILED at step {report.step}", file=out)
        return FAILED
    print(f"smoke test passed: {report.step} steps", file=out)
    return PASSED


if __name__ == "__main__":
    sys.exit(main())
