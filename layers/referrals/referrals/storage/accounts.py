"""Accounts: registration's reads and its one transaction, the customer view, the code cache, count shards."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from referrals.errors import Busy
from referrals.storage.client import _RETRYABLE_REASONS, _batch_get, _get, _shared_connection, _transact
from referrals.storage.invites import VelocityCharge, VelocityExceeded, _add_velocity
from referrals.storage.models import CodeItem, CountItem, CustomerItem, ReferralItem


class AccountExists(Exception):
    pass


class CodeTaken(Exception):
    pass


@dataclass(frozen=True)
class CustomerView:
    customer: CustomerItem
    referral_count: int


def load_customer_view(customer_id: str) -> CustomerView | None:
    """The account and its count: one request, or two when a viral count is spread over several shards."""
    first = {"referrerId": customer_id, "shard": 0}
    found = _batch_get({CustomerItem: [{"customerId": customer_id}], CountItem: [first]})
    if not found[CustomerItem]:
        return None
    customer = found[CustomerItem][0]
    counts = found[CountItem]
    shards = int(customer.count_shards or 1)
    if shards > 1:
        more = [{"referrerId": customer_id, "shard": shard} for shard in range(1, shards)]
        counts = counts + _batch_get({CountItem: more})[CountItem]
    return CustomerView(customer, sum(int(item.count) for item in counts))


# A registration reads the friend's code; one viral code read by every sign-up would pass an item's read
# ceiling, so each environment keeps a code for a few seconds. A disabled code is refused within that time.
CODE_CACHE_SECONDS = 5.0
_code_cache: dict[str, tuple[float, CodeItem]] = {}


def load_registration_context(customer_id: str, code: str | None) -> tuple[bool, CodeItem | None]:
    """Whether the account exists, and the code's item if a code is given, in one request."""
    keys: dict[type[Model], list[dict[str, Any]]] = {CustomerItem: [{"customerId": customer_id}]}
    cached = _code_cache.get(code) if code else None
    fresh = cached is not None and time.monotonic() - cached[0] < CODE_CACHE_SECONDS
    if code and not fresh:
        keys[CodeItem] = [{"code": code}]
    found = _batch_get(keys)
    if code and not fresh:
        code_items = found.get(CodeItem) or []
        if not code_items:
            return bool(found[CustomerItem]), None
        _code_cache[code] = (time.monotonic(), code_items[0])
    return bool(found[CustomerItem]), (_code_cache[code][1] if code else None)


def forget_code(code: str) -> None:
    _code_cache.pop(code, None)


def grow_count_shards(code: CodeItem, shards_seen: int, shards: int) -> bool:
    """Spread a hot count over more shards: the code item (which registrations read) and the owner's account
    (which the customer view reads) change together, and only from the number the caller saw."""
    try:
        with TransactWrite(connection=_shared_connection()) as transaction:
            transaction.update(
                code,
                actions=[CodeItem.count_shards.set(shards)],
                condition=CodeItem.count_shards.does_not_exist() | (CodeItem.count_shards == shards_seen)
                if shards_seen == 1
                else CodeItem.count_shards == shards_seen,
            )
            transaction.update(
                CustomerItem(code.customer_id),
                actions=[CustomerItem.count_shards.set(shards)],
                condition=CustomerItem.customer_id.exists(),
            )
    except (TransactWriteError, PynamoDBException):
        return False  # another registration grew it first, or the store is busy: the next contention retries
    return True


def customer_exists(customer_id: str) -> bool:
    return load_registration_context(customer_id, None)[0]


def create_account(
    customer: CustomerItem,
    code: CodeItem,
    referral: ReferralItem | None,
    count_shard: int,
    events: Sequence[Model] = (),
    velocity: VelocityCharge | None = None,
) -> bool:
    """Account, code, link, the referrer's count (and the outbox's events) in one transaction: all or none.

    Returns whether the count's item was contended (throttled or conflicting) on the way, so the caller may
    spread the count wider. Raises AccountExists when the customer already has an account (a retry or a race
    lost), CodeTaken when the fresh code collided with an existing one, VelocityExceeded when the sign-up
    counter of `velocity` (with a referral only) was already at its limit.
    """
    count_contended = False
    # pynamodb sends a transaction's puts before its updates, whatever the order they were added in: the
    # customer, code, referral and event puts come first, then the count's update, then the velocity counter's.
    count_index = 3 + len(events)
    velocity_index = count_index + 1

    def contended(reasons: list[str | None]) -> None:
        nonlocal count_contended
        count_contended = count_contended or (len(reasons) > count_index and reasons[count_index] in _RETRYABLE_REASONS)

    def write(transaction: TransactWrite) -> None:
        transaction.save(customer, condition=CustomerItem.customer_id.does_not_exist())
        transaction.save(code, condition=CodeItem.code.does_not_exist())
        if referral is not None:
            transaction.save(referral, condition=ReferralItem.pk.does_not_exist())
            transaction.update(
                CountItem(referral.referrer_id, count_shard),
                actions=[CountItem.count.add(1)],
            )
            if velocity is not None:
                _add_velocity(transaction, velocity)
        for event in events:  # puts, so sent after the three puts above: the reasons' positions below stay
            transaction.save(event)

    reasons = _transact(write, contended if referral is not None else None)
    if reasons is None:
        return count_contended
    if reasons[0] == "ConditionalCheckFailed":
        raise AccountExists()
    if reasons[1] == "ConditionalCheckFailed":
        raise CodeTaken()
    if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
        raise AccountExists()
    if velocity is not None and len(reasons) > velocity_index and reasons[velocity_index] == "ConditionalCheckFailed":
        raise VelocityExceeded()
    raise Busy()


def load_customer(customer_id: str) -> CustomerItem | None:
    """The account alone (no counts): one GetItem."""
    return _get(CustomerItem, customer_id)


def load_code(code: str) -> CodeItem | None:
    return _get(CodeItem, code)


def query_referrals(referrer_id: str, offset: int, limit: int) -> Iterable[ReferralItem]:
    return ReferralItem.by_referrer.query(referrer_id, scan_index_forward=False, limit=offset + limit)
