"""Authorisation drill: every operation schema.graphql serves, run with customer A's token against customer B's
data and site, is refused or scoped to A; API-key callers reach only `@aws_api_key` fields; forged and tampered
tokens are refused; and code enumeration through the public lookup is throttled per source.

In-process (the AppSync stand-in over moto, two sites) where the resolvers' answers matter; over HTTP
(`local_api`) where the stand-in's token checks do. tests/local/test_contract_registration.py and
test_stand_in_limits.py already refuse a missing, garbage, foreign-key, expired or `alg: none` token, a
tampered site claim, another issuer or audience, an access token, no subject and a malformed expiry; the
token cases here are the ones they do not cover.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from graphql import GraphQLObjectType

from devserver import tokens
from devserver.appsync import load_schema
from devserver.samples import appsync_event
from referrals import storage
from tests.conftest import AWS_CALLS, OUTLET_SITE, new_id
from tests.drills.invite_helpers import (
    OFFER,
    REGISTER,
    SEND,
    Env,
    clean,
    register,
    ses_destinations,
    stack_env,
)

CONFIG = {
    "sites": {
        "default": {},
        "outlet": OUTLET_SITE,
    },
    "codeLookups": {"capacity": 5, "refillPerHour": 60},
}
LOOKUPS = CONFIG["codeLookups"]["capacity"]
CUSTOMER = "{ customer { referralCode referralCount referralLink } }"
REFERRALS = "{ customer { referralCode referrals { total hasMore items { friendName status } } } }"


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    name: str
    code: str = ""


@dataclass
class World:
    env: Env
    a: Person
    b: Person
    friend: Person  # registered with B's code: B's count is 1 and B's referrals show them
    outlet: Person  # a customer of the other site, whom A's token for that site must not reach either

    def as_a(self, query: str, variables: dict[str, Any] | None = None, site: str | None = "default") -> dict:
        return self.env.call(query, variables, self.a.id, self.a.email, site)

    def b_secrets(self) -> list[str]:
        """What A must never see of B (id, email, last name, B's friend) nor of the other site's customer."""
        b, friend, other = self.b, self.friend, self.outlet
        return [b.id, b.email, "Bravo", friend.id, friend.email, "Foxtrot", "Fay", other.id, other.email, other.code]

    def b_state(self) -> Any:
        """Everything of B's that A's calls must leave as it is: account, count, referrals, bucket, mail sent."""
        from moto.ses.models import ses_backends

        from devserver.stack import ACCOUNT, REGION

        view = self.env.call(REFERRALS, None, self.b.id, self.b.email)["data"]["customer"]
        try:
            bucket = storage.BucketItem.get(f"BUCKET#CUSTOMER#{self.b.id}").tat
        except storage.BucketItem.DoesNotExist:
            bucket = None
        mails = [m for m in ses_backends[ACCOUNT][REGION].sent_messages if self.b.code in str(m.template_data)]
        return view, bucket, storage.CustomerItem.get(self.b.id).attribute_values, len(mails)


def _person(env: Env, name: str, site: str = "default", code: str | None = None) -> Person:
    me = new_id()
    email = f"{name.split()[0].lower()}-{me}@example.com"
    if code is None:
        return Person(me, email, name, register(env, me, email, name, site))
    answer = env.call(REGISTER, {"input": {"fullName": name, "referralCode": code}}, me, email, site)
    assert answer["data"]["register"]["error"] is None, answer
    return Person(me, email, name, answer["data"]["register"]["customer"]["referralCode"])


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with stack_env({"SitesConfig": json.dumps(CONFIG)}) as env:
        a = _person(env, "Ann Alpha")
        b = _person(env, "Bea Bravo")
        friend = _person(env, "Fay Foxtrot", code=b.code)
        outlet = _person(env, "Otto Ost", site="outlet")
        yield World(env, a, b, friend, outlet)


# ---------- the table: (operation, what A tries, the call, what must hold) ----------


@dataclass(frozen=True)
class Case:
    operation: str  # Type.field, as template.yaml's resolvers name it
    attempt: str
    run: Callable[[World], dict]
    check: Callable[[World, dict], None]
    shows_b_code: bool = False  # A typed B's code into a public lookup: the code comes back, nothing else of B


def _data(answer: dict, name: str) -> Any:
    return (answer.get("data") or {}).get(name)


def _types(answer: dict) -> list[str]:
    return [error["errorType"] for error in answer.get("errors") or []]


def _refused_by_schema(answer: dict) -> None:
    assert answer["data"] is None and set(_types(answer)) == {"ValidationError"}, answer


def _not_authorized(name: str) -> Callable[[World, dict], None]:
    def check(w: World, answer: dict) -> None:
        assert (answer["data"] or {}).get(name) is None and _types(answer) == ["Unauthorized"], answer

    return check


EXPORT = """query X($id: ID!) {
  exportCustomer(customerId: $id) { customerId account { firstName emailHash } referralCount }
}"""
ERASE = "mutation E($id: ID!) { eraseCustomer(customerId: $id) { customerId erased } }"
REVIEW = "mutation V($id: ID!) { reviewReferral(refereeId: $id, decision: RELEASE) { refereeId status } }"
CHANGE = "mutation C($code: String!) { changeReferralCode(code: $code) { customer { referralCode } error } }"
STATS = """query S($site: String!) {
  programmeStats(siteKey: $site, from: "2026-01-01", to: "2026-01-31") { siteKey totals { signUpsWithCode } }
}"""


def _code_unchanged(error: str) -> Callable[[World, dict], None]:
    def check(w: World, answer: dict) -> None:
        assert _data(answer, "changeReferralCode") == {"customer": None, "error": error}, answer
        assert storage.CustomerItem.get(w.a.id).code == w.a.code

    return check


def _own_account(w: World, answer: dict) -> None:
    assert _data(answer, "customer") == {
        "referralCode": w.a.code,
        "referralCount": 0,
        "referralLink": f"https://shop.example.com/referrals.list?applyCode={w.a.code}",
    }


def _nothing(w: World, answer: dict) -> None:
    assert answer == {"data": {"customer": None}}, answer


def _own_referrals(w: World, answer: dict) -> None:
    assert _data(answer, "customer") == {
        "referralCode": w.a.code,
        "referrals": {"total": 0, "hasMore": False, "items": []},
    }


def _referrals_with_parent_of_b(w: World) -> dict:
    """The resolver itself, handed a parent object of B's (as no AppSync request could): whose page it serves."""
    event = appsync_event("customer-referrals.json", w.a.id, w.a.email)
    event["source"] = {"customerId": w.b.id, "referralCode": w.b.code, "referralCount": 1, "site": "default"}
    return w.env.stand_in.resolvers[("Customer", "referrals")].invoke(event)


def _own_page_from_the_handler(w: World, answer: dict) -> None:
    assert answer == {"data": {"items": [], "total": 0, "hasMore": False}}, answer


def _public_offer_only(w: World, answer: dict) -> None:
    assert _data(answer, "referralOffer") == {
        "valid": True,
        "code": w.b.code,
        "referrerFirstName": "Bea",
        "siteName": "Example Shop",
        "offerText": "20% off your first order",
    }


def _account_exists(w: World, answer: dict) -> None:
    assert _data(answer, "register") == {"customer": None, "error": "ACCOUNT_EXISTS"}, answer
    assert storage.CustomerItem.get(w.a.id).code == w.a.code and storage.CustomerItem.get(w.a.id).site == "default"


_last: dict[str, Any] = {}  # what a case's run leaves for its check: the newcomer it made, the friend it invited
REGISTER_WITH_ERRORS = """mutation R($input: RegistrationInput!) {
  register(input: $input) { customer { referralCode } error fieldErrors { fieldName validators } }
}"""


def _newcomer(site: str, **input_: str) -> Callable[[World], dict]:
    """A new identity registering with something of B's (`b.<attribute>`) in its input."""

    def run(w: World) -> dict:
        me = new_id()
        arguments = {"fullName": "Nia New", **{k: getattr(w.b, v.removeprefix("b.")) for k, v in input_.items()}}
        _last["newcomer"] = me
        return w.env.call(REGISTER_WITH_ERRORS, {"input": arguments}, me, f"new-{me}@example.com", site)

    return run


def _refused_registration(field_name: str, reason: str) -> Callable[[World, dict], None]:
    def check(w: World, answer: dict) -> None:
        assert _data(answer, "register") == {
            "customer": None,
            "error": "INVALID_DATA",
            "fieldErrors": [{"fieldName": field_name, "validators": [reason]}],
        }, answer
        assert not storage.customer_exists(_last["newcomer"])

    return check


def _bucket_tat(customer_id: str) -> int | None:
    try:
        tat = storage.BucketItem.get(f"BUCKET#CUSTOMER#{customer_id}").tat
    except storage.BucketItem.DoesNotExist:
        return None
    return None if tat is None else int(tat)


def _invite(site: str | None) -> Callable[[World], dict]:
    def run(w: World) -> dict:
        _last["friend"] = f"pal-{new_id('f')}@example.org"
        _last["a bucket"] = _bucket_tat(w.a.id)
        return w.as_a(SEND, {"a": [_last["friend"]]}, site)

    return run


def _sent_as_a(w: World, answer: dict) -> None:
    from moto.ses.models import ses_backends

    from devserver.stack import ACCOUNT, REGION

    assert answer == {"data": {"sendReferralEmail": True}}, answer
    (message,) = [
        m
        for m in ses_backends[ACCOUNT][REGION].sent_messages
        if any(d["Destination"]["ToAddresses"] == [_last["friend"]] for d in m.destinations)
    ]
    data = json.loads(message.template_data)
    # The invite is A's: A's first name, code and link, from the site's sender; B's code nowhere in it
    assert message.source == "friends@shop.example.com"
    assert data["code"] == w.a.code and data["referrerName"] == "Ann" and w.a.code in data["link"]
    assert w.b.code not in message.template_data
    # And it spent a token of A's bucket (B's is checked untouched with the rest of B's state)
    after = _bucket_tat(w.a.id)
    assert after is not None and (_last["a bucket"] is None or after > _last["a bucket"])


def _no_account_nothing_sent(w: World, answer: dict) -> None:
    assert answer["data"] == {"sendReferralEmail": None} and _types(answer) == ["NoAccount"], answer
    assert not [d for d in ses_destinations() if d.get("ToAddresses") == [_last["friend"]]]
    assert _bucket_tat(w.a.id) == _last["a bucket"]


CASES = [
    Case("Query.customer", "read an account", lambda w: w.as_a(CUSTOMER), _own_account),
    Case(
        "Query.customer",
        "name B's id in an argument",
        lambda w: w.as_a(f'{{ customer(customerId: "{w.b.id}") {{ referralCode }} }}'),
        lambda w, a: _refused_by_schema(a),
    ),
    Case(
        "Query.customer",
        "read with a token for the other site",
        lambda w: w.as_a(CUSTOMER, site="outlet"),
        _nothing,
    ),
    Case(
        "Query.customer",
        "read with a token of A's that carries B's email",
        lambda w: w.env.call(CUSTOMER, None, w.a.id, w.b.email),
        _own_account,
    ),
    Case("Customer.referrals", "list referrals", lambda w: w.as_a(REFERRALS), _own_referrals),
    Case(
        "Customer.referrals",
        "list referrals with a token for the other site",
        lambda w: w.as_a(REFERRALS, site="outlet"),
        _nothing,
    ),
    Case(
        "Customer.referrals",
        "hand the resolver a parent object of B's",
        _referrals_with_parent_of_b,
        _own_page_from_the_handler,
    ),
    Case(
        "Query.referralOffer",
        "look up B's code",
        lambda w: w.as_a(OFFER, {"code": w.b.code}),
        _public_offer_only,
        shows_b_code=True,
    ),
    Case(
        "Query.referralOffer",
        "ask the lookup for more than the landing page shows",
        lambda w: w.as_a(
            f'{{ referralOffer(code: "{w.b.code}") {{ valid referrerEmail referrerLastName referralCount }} }}'
        ),
        lambda w, a: _refused_by_schema(a),
    ),
    Case(
        "Mutation.register",
        "register again, now with B's code",
        lambda w: w.as_a(
            "mutation R($input: RegistrationInput!) { register(input: $input) { customer { referralCode } error } }",
            {"input": {"fullName": "Ann Alpha", "referralCode": w.b.code}},
        ),
        _account_exists,
    ),
    Case(
        "Mutation.register",
        "register a second account on the other site",
        lambda w: w.as_a(REGISTER, {"input": {"fullName": "Ann Alpha"}}, site="outlet"),
        _account_exists,
    ),
    Case(
        "Mutation.register",
        "register a new identity under B's email address",
        _newcomer("default", email="b.email"),
        _refused_registration("email", "MUST_MATCH_SIGNED_IN_EMAIL"),
    ),
    Case(
        "Mutation.register",
        "register on the other site with B's code",
        _newcomer("outlet", referralCode="b.code"),
        _refused_registration("referralCode", "REFERRAL_CODE_OTHER_SITE"),
    ),
    Case(
        "Query.exportCustomer",
        "export B's data (a server-to-server field)",
        lambda w: w.as_a(EXPORT, {"id": w.b.id}),
        _not_authorized("exportCustomer"),
    ),
    Case(
        "Query.exportCustomer",
        "export A's own data",
        lambda w: w.as_a(EXPORT, {"id": w.a.id}),
        _not_authorized("exportCustomer"),
    ),
    Case(
        "Mutation.eraseCustomer",
        "erase B (a server-to-server field)",
        lambda w: w.as_a(ERASE, {"id": w.b.id}),
        _not_authorized("eraseCustomer"),
    ),
    Case(
        "Mutation.eraseCustomer",
        "erase A's own account",
        lambda w: w.as_a(ERASE, {"id": w.a.id}),
        _not_authorized("eraseCustomer"),
    ),
    Case(
        "Mutation.reviewReferral",
        "release the referral of B's friend (a server-to-server field)",
        lambda w: w.as_a(REVIEW, {"id": w.friend.id}),
        _not_authorized("reviewReferral"),
    ),
    Case(
        "Mutation.changeReferralCode",
        "take B's code as A's own",
        lambda w: w.as_a(CHANGE, {"code": w.b.code}),
        _code_unchanged("CODE_TAKEN"),
    ),
    Case(
        "Mutation.changeReferralCode",
        "change the code with a token for the other site",
        lambda w: w.as_a(CHANGE, {"code": "ANNSCODE1"}, site="outlet"),
        _code_unchanged("NO_ACCOUNT"),
    ),
    Case(
        "Mutation.changeReferralCode",
        "name B's id in an argument",
        lambda w: w.as_a(f'mutation {{ changeReferralCode(code: "ANN2", customerId: "{w.b.id}") {{ error }} }}'),
        lambda w, a: _refused_by_schema(a),
    ),
    Case(
        "Query.programmeStats",
        "read the programme's figures (a server-to-server field)",
        lambda w: w.as_a(STATS, {"site": "default"}),
        _not_authorized("programmeStats"),
    ),
    Case("Mutation.sendReferralEmail", "send invites", _invite("default"), _sent_as_a),
    Case(
        "Mutation.sendReferralEmail",
        "send invites with a token for the other site",
        _invite("outlet"),
        _no_account_nothing_sent,
    ),
    Case(
        "Mutation.sendReferralEmail",
        "name another sender in an argument",
        lambda w: w.as_a(
            f'mutation {{ sendReferralEmail(emailAddresses: ["x@example.org"], customerId: "{w.b.id}") }}'
        ),
        lambda w, a: _refused_by_schema(a),
    ),
]


def test_the_table_covers_every_operation_the_template_resolves(world):
    resolved = {f"{type_}.{field_}" for type_, field_ in world.env.stack.resolvers()}
    assert resolved == {case.operation for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.operation}: {c.attempt}" for c in CASES])
def test_a_token_of_a_reaches_only_a(world, case):
    before = world.b_state()
    # When customer A tries it
    answer = case.run(world)
    # Then no server error, no internal detail, nothing of B's in the answer
    clean(answer)
    text = json.dumps(answer)
    assert not [secret for secret in world.b_secrets() if secret in text], text
    if not case.shows_b_code:
        assert world.b.code not in text
    # And the case's own promise holds, and nothing of B's changed
    case.check(world, answer)
    assert world.b_state() == before


# ---------- API-key callers: only @aws_api_key fields, even if the stand-in let one through ----------


ARGUMENTS = {
    "customer": ("{ customer { referralCode } }", {}),
    "referralOffer": ("query O($c: String!) { referralOffer(code: $c) { valid } }", {"c": "ABCD2345"}),
    "register": (REGISTER, {"input": {"fullName": "Kay Key"}}),
    "sendReferralEmail": (SEND, {"a": ["keyed@example.org"]}),
    "exportCustomer": (EXPORT, {"id": "customer-b"}),
    "eraseCustomer": (ERASE, {"id": "customer-b"}),
    "reviewReferral": (REVIEW, {"id": "customer-b"}),
    "changeReferralCode": (CHANGE, {"code": "KEYED2026"}),
    "programmeStats": (STATS, {"site": "default"}),
}
MODES = {"API_KEY": "aws_api_key", "AWS_IAM": "aws_iam"}


def _root_fields() -> dict[str, set[str]]:
    """Every Query and Mutation field, and the providers schema.graphql opens it to (@aws_* directives)."""
    from devserver.stack import Stack

    schema = load_schema(Stack().schema_path().read_text())
    found: dict[str, set[str]] = {}
    for root in (schema.query_type, schema.mutation_type):
        assert isinstance(root, GraphQLObjectType)
        for name, definition in root.fields.items():
            # AppSync's rule: the field's @aws_* directives, else its type's, else the API's default provider
            nodes = definition.ast_node.directives or root.ast_node.directives or ()
            found[name] = {d.name.value for d in nodes}
    return found


def _mode_cases() -> Iterator[Any]:
    for name, directives in sorted(_root_fields().items()):
        for mode, directive in MODES.items():
            allowed = directive in directives
            if mode == "AWS_IAM" and allowed:
                continue  # what IAM callers may do is the privacy drill's
            yield pytest.param(name, mode, allowed, id=f"{mode}-{name}")


def test_every_root_field_is_in_the_provider_table():
    assert set(_root_fields()) == set(ARGUMENTS)


@pytest.mark.parametrize(("name", "mode", "allowed"), list(_mode_cases()))
def test_api_key_and_iam_callers_reach_only_their_fields(world, name, mode, allowed):
    query, variables = ARGUMENTS[name]
    mails, accounts = len(ses_destinations()), storage.CustomerItem.count()
    answer = world.env.call(query, variables, None, source_ip="192.0.2.200", iam=mode == "AWS_IAM")
    clean(answer)
    if allowed:
        assert "Unauthorized" not in _types(answer) and answer["data"][name] is not None
    else:
        # A non-null field (register) takes `data` with it to null, as GraphQL says
        assert (answer["data"] or {}).get(name) is None and _types(answer) == ["Unauthorized"], answer
        schema = load_schema(world.env.stack.schema_path().read_text())
        type_name = "Query" if name in schema.query_type.fields else "Mutation"
        assert answer["errors"][0]["message"] == f"Not Authorized to access {name} on type {type_name}"
    # And nothing was sent or created
    assert len(ses_destinations()) == mails and storage.CustomerItem.count() == accounts


SAMPLES = {
    ("Query", "customer"): "customer-query.json",
    ("Mutation", "register"): "register.json",
    ("Mutation", "sendReferralEmail"): "send-referral-email.json",
    ("Customer", "referrals"): "customer-referrals.json",
    ("Mutation", "changeReferralCode"): "change-referral-code.json",
}


@pytest.mark.parametrize("key", sorted(SAMPLES), ids=".".join)
def test_the_function_itself_refuses_a_caller_without_identity(world, key):
    # Given a request that reached the function with no identity (an API key on a field that should not allow it)
    event = copy.deepcopy(appsync_event(SAMPLES[key], "x", "x@example.com"))
    event["identity"] = None
    mails = len(ses_destinations())
    AWS_CALLS.reset()
    answer = world.env.stand_in.resolvers[key].invoke(event)
    # Then it refuses before any AWS call
    assert answer["error"]["type"] == "Unauthorized" and "data" not in answer
    assert AWS_CALLS.calls == [] and len(ses_destinations()) == mails


def test_every_resolver_for_customers_has_a_sample_here(world):
    # The fields left to the API's default provider (Cognito) and Customer's own fields
    customers_only = {(t, f) for t, f in world.env.stack.resolvers() if t == "Customer" or not _root_fields()[f]}
    assert customers_only == set(SAMPLES)


# ---------- tokens the stand-in must refuse (beyond tests/local's), over HTTP ----------


def _b64(data: bytes | dict) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict, dict, str]:
    header, body, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(body + "==")),
        signature,
    )


def _sign(header: dict, claims: dict | list, key: str | None = None) -> str:
    """Signed with HMAC-SHA256 under the stand-in's key (unless given), whatever the header claims."""
    return tokens.sign(claims, key, header)


def _with(token: str, header: dict | None = None, claims: dict | None = None, signature: str | None = None) -> str:
    """A's token with parts changed, its signature kept (unless given)."""
    old_header, old_claims, old_signature = _parts(token)
    return ".".join(
        [
            _b64({**old_header, **(header or {})}),
            _b64({**old_claims, **(claims or {})}),
            old_signature if signature is None else signature,
        ]
    )


A_TOKEN = tokens.mint("customer-a", "a@example.com")
A_CLAIMS = _parts(A_TOKEN)[1]
FORGED = {
    # A's own token, changed after signing
    "subject swapped to B's": _with(A_TOKEN, claims={"sub": "customer-b"}),
    "email swapped to B's": _with(A_TOKEN, claims={"email": "b@example.com"}),
    "expiry pushed back": _with(A_TOKEN, claims={"exp": 4_102_444_800}),
    "alg None, no signature": _with(A_TOKEN, header={"alg": "None"}, signature=""),
    "alg NONE, signature kept": _with(A_TOKEN, header={"alg": "NONE"}),
    "alg none, claims of B": _with(A_TOKEN, header={"alg": "none"}, claims={"sub": "customer-b"}, signature=""),
    "signature stripped": _with(A_TOKEN, signature=""),
    "four segments": A_TOKEN + ".extra",
    "Bearer, signed with another key": "Bearer " + tokens.mint("customer-a", "a@example.com", key="another-secret"),
    # Signed with the right key, so only the checks beyond the signature refuse them
    "alg none, validly signed": _sign({"alg": "none"}, A_CLAIMS),
    "alg HS512, validly signed": _sign({"alg": "HS512"}, A_CLAIMS),
    "alg RS256, HMAC-signed (key confusion)": _sign({"alg": "RS256"}, A_CLAIMS),
    "expiring this second": tokens.mint("customer-a", "a@example.com", ttl_seconds=0),
    "issuer with a trailing slash": _sign({"alg": "HS256"}, {**A_CLAIMS, "iss": tokens.ISSUER + "/"}),
    "issuer of the deployed pool": _sign(
        {"alg": "HS256"}, {**A_CLAIMS, "iss": "https://cognito-idp.eu-west-1.amazonaws.com/x"}
    ),
    "audience of another client": _sign({"alg": "HS256"}, {**A_CLAIMS, "aud": "another-client"}),
    "subject not a string": _sign({"alg": "HS256"}, {**A_CLAIMS, "sub": ["customer-a"]}),
    "claims not an object": _sign({"alg": "HS256"}, ["customer-a"]),
    "header not an object": ".".join([_b64(b'"HS256"'), *_sign({"alg": "HS256"}, A_CLAIMS).split(".")[1:]]),
    "signed with the empty key": _sign({"alg": "HS256"}, A_CLAIMS, key=""),
}


@pytest.mark.http
@pytest.mark.parametrize("token", list(FORGED.values()), ids=list(FORGED))
def test_a_forged_or_tampered_token_is_refused(local_api, token):
    for query in (CUSTOMER, REGISTER):
        status, body = local_api.graphql(query, {"input": {"fullName": "Eve Evil"}}, token=token)
        assert status == 401 and body["errors"][0]["errorType"] == "UnauthorizedException" and "data" not in body


@pytest.mark.http
def test_a_forged_token_beside_the_api_key_gets_only_the_key_s_rights(local_api):
    forged = FORGED["subject swapped to B's"]
    headers = {"Content-Type": "application/json", "Authorization": forged, "x-api-key": "local-api-key"}
    for query, variables in (ARGUMENTS["customer"], ARGUMENTS["register"], ARGUMENTS["sendReferralEmail"]):
        status, body = local_api.request("POST", "/graphql", {"query": query, "variables": variables}, headers)
        # A null identity with the key's rights: the field is refused, not served as customer-b
        assert status == 200 and [e["errorType"] for e in body["errors"]] == ["Unauthorized"], body
        assert set((body["data"] or {None: None}).values()) == {None}


# ---------- code enumeration through the public lookup, throttled per source ----------


def _source(n: int) -> str:
    return f"198.51.100.{n}"


def _lookup(world: World, code: str, ip: str, spoof: str | None = None, signed_in: bool = False) -> dict:
    headers = {"X-Forwarded-For": spoof} if spoof else None
    if signed_in:
        return world.env.call(OFFER, {"code": code}, world.a.id, world.a.email, source_ip=ip, headers=headers)
    return world.env.call(OFFER, {"code": code}, None, source_ip=ip, headers=headers)


@pytest.mark.parametrize("signed_in", [False, True], ids=["api key", "signed in"])
def test_many_lookups_from_one_source_are_refused_and_another_source_is_not(world, signed_in):
    guesser, bystander = _source(10 + signed_in), _source(20 + signed_in)
    # Given a source guessing codes up to the bucket's capacity
    for n in range(LOOKUPS):
        answer = _lookup(world, f"ZZZZ{2345 + n}", guesser, signed_in=signed_in)
        assert answer["data"]["referralOffer"]["valid"] is False
    # When it asks again, even for a live code, and whatever X-Forwarded-For it writes
    AWS_CALLS.reset()
    for spoof in (None, _source(99), f"{_source(98)}, {_source(97)}"):
        answer = _lookup(world, world.b.code, guesser, spoof, signed_in)
        # Then it is refused, and the refusal says nothing about the code (no read, no data)
        assert answer["data"] == {"referralOffer": None}
        (error,) = answer["errors"]
        assert (
            error["errorType"] == "RateLimited" and error["errorInfo"]["rateLimitingBucket"] == "REFERRAL_CODE_LOOKUP"
        )
        assert error["errorInfo"]["retryAfterSeconds"] > 0
    assert AWS_CALLS.count() == {"UpdateItem": 3}
    # And another source is unaffected
    assert _lookup(world, world.b.code, bystander, signed_in=signed_in)["data"]["referralOffer"]["valid"] is True


def test_the_bucket_is_keyed_by_a_digest_of_the_source_not_the_address(world):
    ip = _source(30)
    _lookup(world, "ABCD2345", ip)
    digest = hashlib.sha256(ip.encode()).hexdigest()[:32]
    assert storage.BucketItem.get(f"BUCKET#LOOKUP#{digest}").tat is not None
    with pytest.raises(storage.BucketItem.DoesNotExist):
        storage.BucketItem.get(f"BUCKET#LOOKUP#{ip}")
