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


def count_by_shard(referrer_id: str) -> dict[int, int]:
    """Every count shard of a referrer that holds an item, read under its own key (models.shard_key)."""
    from referrals import counting, storage

    keys = storage.CountItem.keys_for(referrer_id, range(counting.MAX_SHARDS))
    found = storage.CountItem.batch_get([(key["referrerId"], key["shard"]) for key in keys], consistent_read=True)
    return {item.shard: int(item.count) for item in found}


def spread_referrer(friends: int, shards: int = 4) -> tuple[str, list[str]]:
    """A referrer whose count was spread over `shards` before `friends` friends signed up (newest last)."""
    from referrals import storage
    from tests.conftest import new_id as _new_id

    referrer = _new_id("viral")
    code = register(referrer, "viral@example.com")["data"]["customer"]["referralCode"]
    assert storage.grow_count_shards(storage.load_code(code), 1, shards)
    storage.forget_code(code)
    made = []
    for i in range(friends):
        friend = _new_id("friend")
        assert register(friend, f"f{i}@example.com", code=code)["data"]["newCustomer"] is True
        made.append(friend)
    assert len({shard for shard, count in count_by_shard(referrer).items() if count}) > 1  # seeded: spread
    return referrer, made
