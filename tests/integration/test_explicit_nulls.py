"""An explicit null for an optional argument (or an optional input field) means what leaving it out means.

GraphQL lets a client write `referrals(offset: null)` for any nullable argument, and AppSync hands the function
`"offset": null`; the routes' defaults apply only to an argument that is absent (graphql_adapter drops the nulls).
Every nullable argument and input field of schema.graphql is enumerated here, so a new one is covered too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from graphql import GraphQLInputObjectType, GraphQLObjectType, get_named_type, is_non_null_type

from devserver.appsync import AppSyncStandIn, RequestContext, load_schema
from devserver.lambdas import LocalFunction
from devserver.stack import ACCOUNT, Stack
from tests.conftest import new_id

pytestmark = pytest.mark.usefixtures("aws_env")

SCHEMA = load_schema(Stack().schema_path().read_text())


def _nullable_arguments() -> list[tuple[str, str, str]]:
    found = []
    for type_name, kind in SCHEMA.type_map.items():
        if type_name.startswith("__") or not isinstance(kind, GraphQLObjectType):
            continue
        for field_name, field in kind.fields.items():
            found += [(type_name, field_name, a) for a, arg in field.args.items() if not is_non_null_type(arg.type)]
    return sorted(found)


def _nullable_input_fields() -> list[tuple[str, str]]:
    """Optional fields of the input types the arguments take."""
    found = []
    for kind in SCHEMA.type_map.values():
        if isinstance(kind, GraphQLInputObjectType) and not kind.name.startswith("__"):
            found += [(kind.name, name) for name, field in kind.fields.items() if not is_non_null_type(field.type)]
    return sorted(found)


@pytest.fixture
def appsync(aws_env):
    stack = Stack()
    functions = {name: LocalFunction(spec) for name, spec in stack.functions().items()}
    stand_in = AppSyncStandIn(
        load_schema(stack.schema_path().read_text()),
        {key: functions[name] for key, name in stack.resolvers().items()},
        {},
    )

    def call(query: str, who: str | None) -> dict[str, Any]:
        """`who`: a signed-in customer's id, or None for an IAM-signed server."""
        if who is None:
            identity = {"accountId": ACCOUNT, "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/PrivacyDesk/x"}
            return stand_in.execute({"query": query}, RequestContext(identity, {}, {}, auth_mode="AWS_IAM"))
        claims = {"sub": who, "email": f"{who}@example.com", "custom:site": "default"}
        identity = {"sub": who, "claims": claims, "sourceIp": ["203.0.113.7"], "defaultAuthStrategy": "ALLOW"}
        return stand_in.execute({"query": query}, RequestContext(identity, {}, {}))

    return call


def _registered(appsync: Callable[..., dict[str, Any]]) -> str:
    me = new_id("nulls")
    answer = appsync('mutation { register(input: {fullName: "Nora Null"}) { error } }', me)
    assert answer["data"]["register"]["error"] is None, answer
    return me


# How to reach each field with a nullable argument: the query (`{args}` where the arguments go, the required ones
# already written), and who may call it.
FIELDS: dict[tuple[str, str], tuple[str, str]] = {
    ("Customer", "referrals"): ("{ customer { referrals{args} { total hasMore items { status } } } }", "customer"),
    ("Query", "exportCustomer"): (
        '{ exportCustomer(customerId: "{me}"{args}) { customerId referralCount account { firstName site } } }',
        "server",
    ),
}


def _arguments(text: str, *, leading_comma: bool) -> str:
    if not text:
        return ""
    return f", {text}" if leading_comma else f"({text})"


def _query(type_name: str, field_name: str, arguments: str, me: str) -> tuple[str, str | None]:
    template, caller = FIELDS[(type_name, field_name)]
    has_required = "(" in template.split("{args}")[0].rsplit(field_name, 1)[-1]
    query = template.replace("{me}", me).replace("{args}", _arguments(arguments, leading_comma=has_required))
    return query, (me if caller == "customer" else None)


def _no_internal_failure(answer: dict[str, Any]) -> None:
    assert all(e.get("errorType") != "InternalFailure" for e in answer.get("errors") or []), answer
    assert not answer.get("errors"), answer


def test_every_nullable_argument_has_a_way_in():
    assert {(t, f) for t, f, _ in _nullable_arguments()} <= set(FIELDS)
    assert ("Customer", "referrals", "offset") in _nullable_arguments()  # the enumeration finds what it should


@pytest.mark.parametrize(("type_name", "field_name", "argument"), _nullable_arguments())
def test_an_explicit_null_argument_answers_as_if_it_were_left_out(appsync, type_name, field_name, argument):
    me = _registered(appsync)
    query, who = _query(type_name, field_name, f"{argument}: null", me)
    with_null = appsync(query, who)
    _no_internal_failure(with_null)
    omitted, _ = _query(type_name, field_name, "", me)
    assert with_null == appsync(omitted, who)


def test_referrals_with_offset_and_limit_null_is_the_first_page(appsync):
    me = _registered(appsync)
    query, who = _query("Customer", "referrals", "offset: null, limit: null", me)
    answer = appsync(query, who)
    _no_internal_failure(answer)
    assert answer == appsync(_query("Customer", "referrals", "", me)[0], who)
    assert answer["data"]["customer"]["referrals"] == {"total": 0, "hasMore": False, "items": []}


# The input types' optional fields, each reached through the mutation that takes the type: a field written as
# null must mean the same as a field left out.
INPUTS: dict[str, Callable[[str], str]] = {
    "RegistrationInput": lambda field: (
        f'mutation {{ register(input: {{fullName: "Nora Null", {field}: null}}) {{ error fieldErrors {{ fieldName }} '
        "newCustomer customer { referralCount } } }"
    ),
}


def test_every_nullable_input_field_has_a_way_in():
    assert {t for t, _ in _nullable_input_fields()} <= set(INPUTS)
    assert {get_named_type(SCHEMA.mutation_type.fields["register"].args["input"].type).name} <= set(INPUTS)


@pytest.mark.parametrize(("type_name", "field"), _nullable_input_fields())
def test_an_explicit_null_input_field_answers_as_if_it_were_left_out(appsync, type_name, field):
    answer = appsync(INPUTS[type_name](field), new_id("nulls"))
    _no_internal_failure(answer)
    assert answer["data"]["register"] == {
        "error": None,
        "fieldErrors": [],
        "newCustomer": True,
        "customer": {"referralCount": 0},
    }
