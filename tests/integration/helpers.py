"""Invoke a function of template.yaml in-process, as Lambda would, on events built from events/*.json."""

from __future__ import annotations

import copy
from typing import Any

from devserver.lambdas import LocalFunction
from devserver.stack import Stack
from tests.conftest import load_event

_functions: dict[str, LocalFunction] = {}


def function(logical_id: str) -> LocalFunction:
    if logical_id not in _functions:
        _functions[logical_id] = LocalFunction(Stack().functions()[logical_id])
    return _functions[logical_id]


def appsync_event(
    sample: str, customer_id: str, email: str, site: str | None = "default", arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A sample AppSync event from events/, with the identity (and arguments) of the given caller."""
    event = copy.deepcopy(load_event(sample))
    claims = {**event["identity"]["claims"], "sub": customer_id, "email": email}
    if site is None:
        claims.pop("custom:site", None)
    else:
        claims["custom:site"] = site
    event["identity"].update({"sub": customer_id, "username": customer_id, "claims": claims})
    if arguments is not None:
        event["arguments"] = arguments
    return event


def call_api(sample: str, customer_id: str, email: str, **kwargs: Any) -> dict[str, Any]:
    return function("ApiFunction").invoke(appsync_event(sample, customer_id, email, **kwargs))


def register(customer_id: str, email: str, full_name: str = "Alice Smith", code: str | None = None, **kwargs: Any):
    arguments = {"input": {"fullName": full_name, **({"referralCode": code} if code is not None else {})}}
    return call_api("register.json", customer_id, email, arguments=arguments, **kwargs)


def customer(customer_id: str, email: str, **kwargs: Any) -> dict[str, Any]:
    return call_api("customer-query.json", customer_id, email, **kwargs)
