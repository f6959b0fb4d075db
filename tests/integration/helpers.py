"""Invoke a function of template.yaml in-process, as Lambda would, on events built from events/*.json."""

from __future__ import annotations

from typing import Any

from devserver.lambdas import LocalFunction
from devserver.samples import appsync_event
from devserver.stack import Stack

_functions: dict[str, LocalFunction] = {}


def function(logical_id: str) -> LocalFunction:
    if logical_id not in _functions:
        _functions[logical_id] = LocalFunction(Stack().functions()[logical_id])
    return _functions[logical_id]


def call_api(sample: str, customer_id: str, email: str, **kwargs: Any) -> dict[str, Any]:
    return function("ApiFunction").invoke(appsync_event(sample, customer_id, email, **kwargs))


def register(customer_id: str, email: str, full_name: str = "Alice Smith", code: str | None = None, **kwargs: Any):
    arguments = {"input": {"fullName": full_name, **({"referralCode": code} if code is not None else {})}}
    return call_api("register.json", customer_id, email, arguments=arguments, **kwargs)


def customer(customer_id: str, email: str, **kwargs: Any) -> dict[str, Any]:
    return call_api("customer-query.json", customer_id, email, **kwargs)
