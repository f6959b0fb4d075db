"""The only module that touches DynamoDB. pynamodb models map items; SDK errors become domain errors."""

from __future__ import annotations

import os
import random
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote

from pynamodb.attributes import Attribute, BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.constants import NUMBER
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from referrals.errors import Busy
from referrals.ratelimit import Attempt, Bucket, Decision, after_refusal, first_attempt

_REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
_RETRYABLE_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
_TRANSACTION_ATTEMPTS = 6


def _table(variable: str) -> str:
    return os.environ.get(variable, variable)


class _Meta:
    region = _REGION
    max_retry_attempts = 3


class CustomerItem(Model):
    """One account per customer id (the Cognito `sub`), tied to the site it registered on."""

    class Meta(_Meta):
        table_name = _table("CUSTOMERS_TABLE")

    customer_id = UnicodeAttribute(hash_key=True, attr_name="customerId")
    site = UnicodeAttribute()
    code = UnicodeAttribute()
    email_hash = UnicodeAttribute(attr_name="emailHash")
    first_name = UnicodeAttribute(attr_name="firstName")
    referred_by = UnicodeAttribute(null=True, attr_name="referredBy")
    created_at = UnicodeAttribute(attr_name="createdAt")
    # Over how many CountItem shards this customer's count is spread (referrals.counting): readers sum them.
    count_shards = NumberAttribute(default=1, attr_name="countShards")


class CodeItem(Model):
    """A referral code and what a registration needs to know of its owner, so one read suffices."""

    class Meta(_Meta):
        table_name = _table("CODES_TABLE")

    code = UnicodeAttribute(hash_key=True)
    customer_id = UnicodeAttribute(attr_name="customerId")
    site = UnicodeAttribute()
    status = UnicodeAttribute(default="ACTIVE")
    owner_email_hash = UnicodeAttribute(attr_name="ownerEmailHash")
    owner_first_name = UnicodeAttribute(attr_name="ownerFirstName")
    created_at = UnicodeAttribute(attr_name="createdAt")
    # The owner's count shards, here too: registrations read this item anyway and pick a shard from it.
    count_shards = NumberAttribute(default=1, attr_name="countShards")


class CountItem(Model):
    """Friends signed up with a referrer's code; one item per shard, summed on read."""

    class Meta(_Meta):
        table_name = _table("COUNTS_TABLE")

    referrer_id = UnicodeAttribute(hash_key=True, attr_name="referrerId")
    shard = NumberAttribute(range_key=True)
    count = NumberAttribute(default=0)


class ByReferrerIndex(GlobalSecondaryIndex["ReferralItem"]):
    class Meta:
        index_name = "ByReferrer"
        projection = AllProjection()

    referrer_id = UnicodeAttribute(hash_key=True, attr_name="referrerId")
    created_at = UnicodeAttribute(range_key=True, attr_name="createdAt")


class ReferralItem(Model):
    """The link between a friend (referee) and their referrer, and its reward lifecycle."""

    class Meta(_Meta):
        table_name = _table("REFERRALS_TABLE")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    referee_id = UnicodeAttribute(attr_name="refereeId")
    referrer_id = UnicodeAttribute(attr_name="referrerId")
    site = UnicodeAttribute()
    code = UnicodeAttribute()
    status = UnicodeAttribute()
    eligible = BooleanAttribute(default=True)
    ineligible_reason = UnicodeAttribute(null=True, attr_name="ineligibleReason")
    friend_name = UnicodeAttribute(attr_name="friendName")
    created_at = UnicodeAttribute(attr_name="createdAt")
    by_referrer = ByReferrerIndex()
    # The reward lifecycle (referrals.rewards): every move is conditional on `version`.
    version = NumberAttribute(default=0)
    reason = UnicodeAttribute(null=True)
    pending_order_id = UnicodeAttribute(null=True, attr_name="pendingOrderId")
    window_ends_at = UnicodeAttribute(null=True, attr_name="windowEndsAt")
    earned_order_id = UnicodeAttribute(null=True, attr_name="earnedOrderId")
    settled_at = UnicodeAttribute(null=True, attr_name="settledAt")
    due_shard = NumberAttribute(null=True, attr_name="dueShard")
    due_at = UnicodeAttribute(null=True, attr_name="dueAt")
    # Review (referrals.abuse, rewards.review_referral): FLAGGED at registration (with the flag's reason) until a
    # reviewer RELEASES or REJECTS it; a flagged referral's reward is held, never earned, until released.
    review = UnicodeAttribute(null=True)
    review_reason = UnicodeAttribute(null=True, attr_name="reviewReason")
    reviewed_at = UnicodeAttribute(null=True, attr_name="reviewedAt")
    reviewed_by = UnicodeAttribute(null=True, attr_name="reviewedBy")

    @staticmethod
    def key_for(referee_id: str) -> tuple[str, str]:
        return f"REFEREE#{referee_id}", "REFERRAL"


class AccountExists(Exception):
    pass


class CodeTaken(Exception):
    pass


_connection: Connection | None = None


def _client() -> Any:
    """The low-level client pynamodb uses, for the one call it lacks: a BatchGetItem across tables."""
    global _connection
    if _connection is None:
        _connection = Connection(region=_REGION)
    return _connection.client


M = TypeVar("M", bound=Model)


def _batch_get(keys: dict[type[Model], list[dict[str, Any]]]) -> dict[type[Model], list[Any]]:
    """Fetch items of several tables in one BatchGetItem, retrying only what DynamoDB left unprocessed."""
    by_table = {model.Meta.table_name: model for model in keys}
    request = {
        model.Meta.table_name: {"Keys": [{k: _serialise(model, k, v) for k, v in key.items()} for key in items]}
        for model, items in keys.items()
        if items
    }
    found: dict[type[Model], list[Any]] = {model: [] for model in keys}
    for attempt in range(_TRANSACTION_ATTEMPTS):
        if not request:
            return found
        try:
            answer = _client().batch_get_item(RequestItems=request)
        except Exception as error:  # botocore already retried throttling; what is left is ours to report
            raise Busy() from error
        for table, items in answer.get("Responses", {}).items():
            model = by_table[table]
            found[model].extend(model.from_raw_data(item) for item in items)
        request = answer.get("UnprocessedKeys") or {}
        if request:
            _backoff(attempt)
    raise Busy()


def _serialise(model: type[Model], attr_name: str, value: Any) -> dict[str, Any]:
    attribute = next(a for a in model.get_attributes().values() if a.attr_name == attr_name)
    return {attribute.attr_type: attribute.serialize(value)}


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.01 * 2**attempt))


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


def _transact(
    write: Callable[[TransactWrite], None], on_contention: Callable[[list[str | None]], None] | None = None
) -> list[str | None] | None:
    """Run a transaction, retrying conflicts and throttling; the reasons when a condition failed."""
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            with TransactWrite(connection=_shared_connection()) as transaction:
                write(transaction)
            return None
        except TransactWriteError as error:
            reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
            if "ConditionalCheckFailed" in reasons:
                return reasons
            if not reasons or any(reason in _RETRYABLE_REASONS for reason in reasons):
                if on_contention is not None:
                    on_contention(reasons)
                _backoff(attempt)
                continue
            raise Busy() from error
        except PynamoDBException as error:
            raise Busy() from error
    raise Busy()


def _shared_connection() -> Connection:
    _client()
    assert _connection is not None
    return _connection


def query_referrals(referrer_id: str, offset: int, limit: int) -> Iterable[ReferralItem]:
    return ReferralItem.by_referrer.query(referrer_id, scan_index_forward=False, limit=offset + limit)


# ---------- Rewards: the referee's ledger, the outbox, monthly caps, the due index (docs/rewards.md) ----------
# Under `REFEREE#<id>`: the referral (`REFERRAL`), one immutable item per order fact (`ORDER#<order>...`) and
# the outbox (`EVENT#<idempotency key>`), so one Query reads a friend's whole story. Under `REFERRER#<id>`: one
# counter per month for the cap. Items the reconciliation must visit carry `dueShard`/`dueAt` (sparse index).

DUE_INDEX = "Due"
# The due index's partition key is spread over this many values so its writes never pile on one partition;
# the reconciliation queries each value. Raising it later is safe; lowering it strands items.
DUE_SHARDS = 4
REGION = _REGION


class DecimalAttribute(Attribute[Decimal]):
    """Money as a DynamoDB number, read back as Decimal (pynamodb's NumberAttribute would give a float)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


def due_shard(referee_id: str) -> int:
    return zlib.crc32(referee_id.encode()) % DUE_SHARDS


def referee_pk(referee_id: str) -> str:
    return f"REFEREE#{referee_id}"


class OrderFactItem(Model):
    """What one order event said about a friend's order. Written once, with a condition on its key (order id,
    kind, refund key), never changed: a redelivered event finds its fact already there."""

    class Meta(_Meta):
        table_name = _table("REFERRALS_TABLE")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    order_id = UnicodeAttribute(attr_name="orderId")
    kind = UnicodeAttribute()
    at = UnicodeAttribute()
    amount = DecimalAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    event_id = UnicodeAttribute(attr_name="eventId")
    expires_at = NumberAttribute(null=True, attr_name="expiresAt")

    @staticmethod
    def sort_key(order_id: str, suffix: str) -> str:
        # Order ids are the commerce system's: quoted, so a `#` in one cannot forge another order's key.
        return f"ORDER#{quote(order_id, safe='')}{suffix}"


class OutboxItem(Model):
    """A reward event waiting to be published, written in the transaction of the change it announces.
    Deleted once EventBridge has accepted it; until then the due index leads the reconciliation to it."""

    class Meta(_Meta):
        table_name = _table("REFERRALS_TABLE")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    detail_type = UnicodeAttribute(attr_name="detailType")
    detail = UnicodeAttribute()
    at = UnicodeAttribute()
    due_shard = NumberAttribute(attr_name="dueShard")
    due_at = UnicodeAttribute(attr_name="dueAt")


class RewardCapItem(Model):
    """Rewards a referrer earned in one calendar month; the cap is a condition on this counter."""

    class Meta(_Meta):
        table_name = _table("REFERRALS_TABLE")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    earned = NumberAttribute(default=0)
    expires_at = NumberAttribute(null=True, attr_name="expiresAt")

    @staticmethod
    def key_for(referrer_id: str, month: str) -> tuple[str, str]:
        return f"REFERRER#{referrer_id}", f"CAP#{month}"


@dataclass(frozen=True)
class RefereeLedger:
    referral: ReferralItem | None
    facts: list[OrderFactItem]


def _query_raw(request: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One Query page through pynamodb's client: the items here are of several models, told apart by `sk`."""
    try:
        answer = _client().query(**request)
    except Exception as error:  # botocore already retried throttling
        raise Busy() from error
    return answer.get("Items", []), answer.get("LastEvaluatedKey")


def load_ledger(referee_id: str) -> RefereeLedger:
    """The referral and every order fact of one friend: one strongly consistent Query (more only past 1 MB).
    Outbox items sort before `ORDER#` and are left out."""
    request: dict[str, Any] = {
        "TableName": ReferralItem.Meta.table_name,
        "KeyConditionExpression": "pk = :pk AND sk >= :from",
        "ExpressionAttributeValues": {":pk": {"S": referee_pk(referee_id)}, ":from": {"S": "ORDER#"}},
        "ConsistentRead": True,
    }
    referral: ReferralItem | None = None
    facts: list[OrderFactItem] = []
    while True:
        items, last = _query_raw(request)
        for raw in items:
            if raw["sk"]["S"] == "REFERRAL":
                referral = ReferralItem.from_raw_data(raw)
            elif raw["sk"]["S"].startswith("ORDER#"):
                facts.append(OrderFactItem.from_raw_data(raw))
        if not last:
            return RefereeLedger(referral, facts)
        request["ExclusiveStartKey"] = last


def due_page(
    shard: int, until: str, start_key: dict[str, Any] | None, limit: int
) -> tuple[list[ReferralItem | OutboxItem], dict[str, Any] | None]:
    """One page of what is due by `until` on one shard of the due index, oldest first."""
    request: dict[str, Any] = {
        "TableName": ReferralItem.Meta.table_name,
        "IndexName": DUE_INDEX,
        "KeyConditionExpression": "dueShard = :shard AND dueAt <= :until",
        "ExpressionAttributeValues": {":shard": {"N": str(shard)}, ":until": {"S": until}},
        "Limit": limit,
    }
    if start_key:
        request["ExclusiveStartKey"] = start_key
    items, last = _query_raw(request)
    found: list[ReferralItem | OutboxItem] = []
    for raw in items:
        sort_key = raw["sk"]["S"]
        if sort_key == "REFERRAL":
            found.append(ReferralItem.from_raw_data(raw))
        elif sort_key.startswith("EVENT#"):
            found.append(OutboxItem.from_raw_data(raw))
    return found, last


class Commit(StrEnum):
    DONE = "DONE"
    DUPLICATE = "DUPLICATE"  # a fact of this change was already recorded: the event was seen before
    STALE = "STALE"  # the referral moved since it was read: read again and decide again
    CAPPED = "CAPPED"  # the referrer's monthly counter is at the cap


@dataclass(frozen=True)
class CapCharge:
    referrer_id: str
    month: str
    limit: int
    expires_at: int


@dataclass
class LedgerChange:
    """One move of a referral: its new attributes (None removes one), guarded by the version it was read at,
    with the facts that caused it, the events that announce it and, when it earns, the monthly counter."""

    referral: ReferralItem
    expected_version: int
    updates: dict[str, Any]
    facts: list[OrderFactItem] = field(default_factory=list)
    events: list[OutboxItem] = field(default_factory=list)
    cap: CapCharge | None = None


def _referral_write(change: LedgerChange) -> tuple[list[Any], Any]:
    actions = [ReferralItem.version.set(change.expected_version + 1)]
    for name, value in change.updates.items():
        attribute = getattr(ReferralItem, name)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    condition = ReferralItem.version == change.expected_version
    if change.expected_version == 0:
        condition = condition | ReferralItem.version.does_not_exist()
    return actions, condition


def commit(change: LedgerChange) -> Commit:
    """Apply a change in one request: an UpdateItem when only the referral moves, else one transaction
    (facts, events, referral, counter), all or nothing."""
    actions, condition = _referral_write(change)
    if not change.facts and not change.events and change.cap is None:
        try:
            change.referral.update(actions=actions, condition=condition)
        except PynamoDBException as error:
            if _refused_by_condition(error):
                return Commit.STALE
            raise Busy() from error
        return Commit.DONE

    def write(transaction: TransactWrite) -> None:
        for fact in change.facts:
            transaction.save(fact, condition=OrderFactItem.pk.does_not_exist())
        for event in change.events:
            transaction.save(event)
        transaction.update(change.referral, actions=actions, condition=condition)
        if change.cap is not None:
            counter = RewardCapItem(*RewardCapItem.key_for(change.cap.referrer_id, change.cap.month))
            transaction.update(
                counter,
                actions=[RewardCapItem.earned.add(1), RewardCapItem.expires_at.set(change.cap.expires_at)],
                condition=RewardCapItem.earned.does_not_exist() | (RewardCapItem.earned < change.cap.limit),
            )

    reasons = _transact(write)
    if reasons is None:
        return Commit.DONE
    # Puts come first in the request (facts, then events), then the referral, then the counter.
    facts = len(change.facts)
    failed = {index for index, reason in enumerate(reasons) if reason == "ConditionalCheckFailed"}
    if failed & set(range(facts)):
        return Commit.DUPLICATE
    if facts + len(change.events) in failed:
        return Commit.STALE
    return Commit.CAPPED


def _refused_by_condition(error: PynamoDBException) -> bool:
    cause = getattr(error, "cause", None)
    response = getattr(cause, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def delete_outbox(items: Iterable[OutboxItem]) -> None:
    """Forget events EventBridge accepted: BatchWriteItem, 25 to a request."""
    try:
        with OutboxItem.batch_write() as batch:
            for item in items:
                batch.delete(item)
    except PynamoDBException as error:
        raise Busy() from error


# ---------- Invites: rate-limit buckets, per-address cool-down and suppression (InvitesTable) ----------
# One table, one partition key: `BUCKET#<scope>#<subject>` items hold a GCRA theoretical arrival time,
# `ADDRESS#<site>#<address hash>` items hold who invited an address until when, or that it is suppressed.


class BucketItem(Model):
    """A token bucket as GCRA stores it: one number (ms since the epoch), removed by TTL once the bucket is full."""

    class Meta(_Meta):
        table_name = _table("INVITES_TABLE")

    pk = UnicodeAttribute(hash_key=True)
    tat = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True, attr_name="expiresAt")


class AddressItem(Model):
    """A friend's address (hashed) on one site: invited until when (TTL), or suppressed for good."""

    class Meta(_Meta):
        table_name = _table("INVITES_TABLE")

    pk = UnicodeAttribute(hash_key=True)
    invited_until = NumberAttribute(null=True, attr_name="invitedUntil")
    invited_at = NumberAttribute(null=True, attr_name="invitedAt")
    invited_by = UnicodeAttribute(null=True, attr_name="invitedBy")
    suppressed_at = UnicodeAttribute(null=True, attr_name="suppressedAt")
    suppressed_reason = UnicodeAttribute(null=True, attr_name="suppressedReason")
    expires_at = NumberAttribute(null=True, attr_name="expiresAt")

    @staticmethod
    def key_for(site: str, address_hash: str) -> str:
        return f"ADDRESS#{site}#{address_hash}"


def _update_or_old(item: Model, actions: list[Any], condition: Any) -> dict[str, Any] | None:
    """A conditional UpdateItem that, when refused, returns the item as it stood ({} when absent).

    pynamodb builds the expressions but cannot ask for ReturnValuesOnConditionCheckFailure, which saves the
    read a refusal would otherwise need; so the request it builds goes out through its own client.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    connection = type(item)._get_connection()
    hash_key, range_key = item._get_hash_range_key_serialized_values()
    request = connection.get_operation_kwargs(
        hash_key,
        range_key=range_key,
        actions=actions,
        condition=condition,
        return_values_on_condition_failure="ALL_OLD",
    )
    try:
        connection.connection.client.update_item(**request)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return error.response.get("Item") or {}
        raise Busy() from error  # botocore has already retried throttling
    except BotoCoreError as error:  # timeouts and connection errors, also retried already (pynamodb maps these itself)
        raise Busy() from error
    return None


def take_tokens(key: str, bucket: Bucket, now_ms: int, cost: int) -> Decision:
    """Spend `cost` tokens of bucket `key` at `now_ms`: one conditional UpdateItem, never a read.

    The protocol (which write first, what a refusal means) is referrals.ratelimit's; this runs its writes.
    A second write is needed only when the bucket is part-spent; a refused caller costs one request.
    """
    expires = bucket.expires_at(now_ms)
    step: Attempt | Decision = first_attempt(bucket, now_ms, cost)
    for _ in range(_TRANSACTION_ATTEMPTS):
        if isinstance(step, Decision):
            return step
        written, stored = bucket_write(key, step, expires)
        if written:
            return Decision(True)
        # A concurrent writer may move the TAT again before our next write: hence the loop.
        step = after_refusal(bucket, now_ms, cost, stored)
    raise Busy()


def bucket_write(key: str, step: Attempt, expires_at_s: int) -> tuple[bool, int | None]:
    """One write of the protocol as a conditional UpdateItem: (written, the stored TAT when refused)."""
    item = BucketItem(f"BUCKET#{key}")
    if step.fresh:
        actions = [BucketItem.tat.set(step.new_tat_ms), BucketItem.expires_at.set(expires_at_s)]
        condition = BucketItem.tat.does_not_exist() | (BucketItem.tat < step.floor_ms)
    else:
        actions = [BucketItem.tat.set(BucketItem.tat + step.increment_ms), BucketItem.expires_at.set(expires_at_s)]
        condition = (BucketItem.tat >= step.floor_ms) & (BucketItem.tat <= step.ceiling_ms)
    old = _update_or_old(item, actions, condition)
    if old is None:
        return True, None
    stored = BucketItem.from_raw_data(old).tat if old else None
    return False, None if stored is None else int(stored)


def return_tokens(key: str, bucket: Bucket, cost: int) -> None:
    """Give back `cost` tokens (mail SES refused). No item means a full bucket: nothing to give back."""
    try:
        BucketItem(f"BUCKET#{key}").update(
            actions=[BucketItem.tat.add(-bucket.increment(cost))], condition=BucketItem.tat.exists()
        )
    except PynamoDBException as error:
        if _is_condition_failure(error):
            return
        raise Busy() from error


def _is_condition_failure(error: PynamoDBException) -> bool:
    cause = getattr(error, "cause", None)
    response = getattr(cause, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def claim_address(site: str, address_hash: str, customer_id: str, now_s: int, until_s: int) -> str | None:
    """Mark an address invited until `until_s`, unless it is suppressed or someone invited it since the last
    cool-down: None when claimed, else "SUPPRESSED" or "RECENTLY_INVITED". One conditional UpdateItem."""
    item = AddressItem(AddressItem.key_for(site, address_hash))
    actions = [
        AddressItem.invited_until.set(until_s),
        AddressItem.invited_at.set(now_s),
        AddressItem.invited_by.set(customer_id),
        AddressItem.expires_at.set(until_s),
    ]
    condition = AddressItem.suppressed_at.does_not_exist() & (
        AddressItem.invited_until.does_not_exist() | (AddressItem.invited_until <= now_s)
    )
    old = _update_or_old(item, actions, condition)
    if old is None:
        return None
    return "SUPPRESSED" if AddressItem.from_raw_data(old).suppressed_at else "RECENTLY_INVITED"


def release_address(site: str, address_hash: str, customer_id: str, invited_at_s: int) -> None:
    """Undo our own claim (SES did not take the mail), never someone else's and never a suppression."""
    condition = (
        (AddressItem.invited_by == customer_id)
        & (AddressItem.invited_at == invited_at_s)
        & AddressItem.suppressed_at.does_not_exist()
    )
    try:
        AddressItem(AddressItem.key_for(site, address_hash)).delete(condition=condition)
    except PynamoDBException as error:
        if _is_condition_failure(error):
            return
        raise Busy() from error


def suppress_address(site: str, address_hash: str, reason: str, at: str) -> None:
    """Put an address on the site's suppression list for good (no TTL). Idempotent: the first time stays."""
    try:
        AddressItem(AddressItem.key_for(site, address_hash)).update(
            actions=[
                AddressItem.suppressed_at.set(AddressItem.suppressed_at | at),
                AddressItem.suppressed_reason.set(AddressItem.suppressed_reason | reason),
                AddressItem.expires_at.remove(),
                # Kept for good, so it keeps no inviter: who invited is cool-down data and leaves with it
                # (and the ByInviter index with it: docs/privacy.md).
                AddressItem.invited_by.remove(),
                AddressItem.invited_at.remove(),
                AddressItem.invited_until.remove(),
            ]
        )
    except PynamoDBException as error:
        raise Busy() from error


def load_customer(customer_id: str) -> CustomerItem | None:
    """The account alone (no counts): one GetItem."""
    try:
        return CustomerItem.get(customer_id)
    except CustomerItem.DoesNotExist:
        return None
    except PynamoDBException as error:
        raise Busy() from error


def load_code(code: str) -> CodeItem | None:
    try:
        return CodeItem.get(code)
    except CodeItem.DoesNotExist:
        return None
    except PynamoDBException as error:
        raise Busy() from error


# ---------- Privacy: erasure and export (docs/privacy.md) ----------
# Erasure strips one customer's personal data in a bounded number of requests whatever they did: one consistent
# BatchGetItem (their account, the referral that brought them, their invite bucket) and one TransactWriteItems.
# Export reads by key and through the ByReferrer and ByInviter indexes. Nothing here scans.

BY_INVITER_INDEX = "ByInviter"


class _ErasableCode(Model):
    """The attributes of a code item that erasure changes: a second view of CodesTable beside CodeItem, so the
    owner's name and email hash can be removed while the code stays (disabled) and is never issued again."""

    class Meta(_Meta):
        table_name = _table("CODES_TABLE")

    code = UnicodeAttribute(hash_key=True)
    customer_id = UnicodeAttribute(null=True, attr_name="customerId")
    status = UnicodeAttribute(null=True)
    owner_email_hash = UnicodeAttribute(null=True, attr_name="ownerEmailHash")
    owner_first_name = UnicodeAttribute(null=True, attr_name="ownerFirstName")
    disabled_reason = UnicodeAttribute(null=True, attr_name="disabledReason")
    erased_at = UnicodeAttribute(null=True, attr_name="erasedAt")


class _ErasableReferral(Model):
    """The attributes of a referral that erasure changes: only the friend's name. Its lifecycle attributes are
    untouched, so the referrer's reward (earned, or still to come) is decided as before."""

    class Meta(_Meta):
        table_name = _table("REFERRALS_TABLE")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    friend_name = UnicodeAttribute(null=True, attr_name="friendName")
    erased_at = UnicodeAttribute(null=True, attr_name="erasedAt")


@dataclass(frozen=True)
class ErasureTargets:
    """What of one customer is stored under keys their id gives: all that erasure has to change."""

    customer: CustomerItem | None
    referral: ReferralItem | None  # the referral that brought them (they are the friend)
    referral_erased: bool
    invite_bucket: bool


def _customer_bucket_pk(customer_id: str) -> str:
    # The customer's REFERRAL_EMAIL bucket, as referrals.invites keys it (`CUSTOMER#<id>`) and take_tokens stores it.
    return f"BUCKET#CUSTOMER#{customer_id}"


def load_erasure_targets(customer_id: str) -> ErasureTargets:
    """One strongly consistent BatchGetItem over three tables: an account created a moment ago is not missed."""
    referral_pk, referral_sk = ReferralItem.key_for(customer_id)
    request = {
        CustomerItem.Meta.table_name: {"Keys": [{"customerId": {"S": customer_id}}], "ConsistentRead": True},
        ReferralItem.Meta.table_name: {
            "Keys": [{"pk": {"S": referral_pk}, "sk": {"S": referral_sk}}],
            "ConsistentRead": True,
        },
        BucketItem.Meta.table_name: {"Keys": [{"pk": {"S": _customer_bucket_pk(customer_id)}}], "ConsistentRead": True},
    }
    found: dict[str, list[dict[str, Any]]] = {}
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            answer = _client().batch_get_item(RequestItems=request)
        except Exception as error:  # botocore already retried throttling
            raise Busy() from error
        for table, items in answer.get("Responses", {}).items():
            found.setdefault(table, []).extend(items)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            break
        _backoff(attempt)
    else:
        raise Busy()
    customers = found.get(CustomerItem.Meta.table_name) or []
    referrals = found.get(ReferralItem.Meta.table_name) or []
    return ErasureTargets(
        customer=CustomerItem.from_raw_data(customers[0]) if customers else None,
        referral=ReferralItem.from_raw_data(referrals[0]) if referrals else None,
        referral_erased=bool(referrals and "erasedAt" in referrals[0]),
        invite_bucket=bool(found.get(BucketItem.Meta.table_name)),
    )


def erase_customer(customer_id: str, targets: ErasureTargets, erased_name: str, erased_at: str) -> bool:
    """Erase what `targets` found, in one transaction: all or none. False when a condition failed because a
    concurrent erasure got there first (read again: there will be less, or nothing, left to do).

    At most 4 + CustomerItem.count_shards items (64 shards at most), inside TransactWriteItems' 100.
    """
    customer = targets.customer

    def write(transaction: TransactWrite) -> None:
        if customer is not None:
            transaction.delete(CustomerItem(customer_id), condition=CustomerItem.customer_id.exists())
            transaction.update(
                _ErasableCode(customer.code),
                actions=[
                    _ErasableCode.status.set("DISABLED"),
                    _ErasableCode.disabled_reason.set("ERASED"),
                    _ErasableCode.erased_at.set(erased_at),
                    _ErasableCode.customer_id.remove(),
                    _ErasableCode.owner_email_hash.remove(),
                    _ErasableCode.owner_first_name.remove(),
                ],
                condition=_ErasableCode.customer_id == customer_id,
            )
            for shard in range(int(customer.count_shards or 1)):
                transaction.delete(CountItem(customer_id, shard))
        if targets.referral is not None and not targets.referral_erased:
            transaction.update(
                _ErasableReferral(*ReferralItem.key_for(customer_id)),
                actions=[_ErasableReferral.friend_name.set(erased_name), _ErasableReferral.erased_at.set(erased_at)],
                condition=_ErasableReferral.pk.exists(),
            )
        if targets.invite_bucket:
            transaction.delete(BucketItem(_customer_bucket_pk(customer_id)))

    return _transact(write) is None


def referrals_made_page(
    referrer_id: str, after: dict[str, str] | None, limit: int
) -> tuple[list[ReferralItem], dict[str, str] | None]:
    """One page of the referrals a customer made, newest first (the ByReferrer index): the items and, when
    there may be more, the key to go on from (`pk`, `sk`, `createdAt`)."""
    request: dict[str, Any] = {
        "TableName": ReferralItem.Meta.table_name,
        "IndexName": "ByReferrer",
        "KeyConditionExpression": "referrerId = :referrer",
        "ExpressionAttributeValues": {":referrer": {"S": referrer_id}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if after:
        request["ExclusiveStartKey"] = {
            "pk": {"S": after["pk"]},
            "sk": {"S": after["sk"]},
            "createdAt": {"S": after["createdAt"]},
            "referrerId": {"S": referrer_id},
        }
    items, last = _query_raw(request)
    found = [ReferralItem.from_raw_data(raw) for raw in items]
    following = {name: last[name]["S"] for name in ("pk", "sk", "createdAt")} if last else None
    return found, following


def count_invites_since(customer_id: str, since_s: int) -> int:
    """How many addresses a customer invited since `since_s` that we still hold a cool-down claim for
    (the ByInviter index, keys only; Select COUNT, so no address hash is even read)."""
    request: dict[str, Any] = {
        "TableName": AddressItem.Meta.table_name,
        "IndexName": BY_INVITER_INDEX,
        "KeyConditionExpression": "invitedBy = :inviter AND invitedAt >= :since",
        "ExpressionAttributeValues": {":inviter": {"S": customer_id}, ":since": {"N": str(since_s)}},
        "Select": "COUNT",
    }
    total = 0
    while True:
        try:
            answer = _client().query(**request)
        except Exception as error:  # botocore already retried throttling
            raise Busy() from error
        total += int(answer.get("Count", 0))
        if not answer.get("LastEvaluatedKey"):
            return total
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


# ---------- Abuse: sign-up velocity counters (InvitesTable), docs/rewards.md "Review" ----------
# One counter per (code, source digest, fixed window): `VELOCITY#<code>#<window>#<digest>`. It rides in the
# registration transaction, so counting costs no request of its own; its TTL removes it a window after its end.
# One item per source, not per code: a viral code signed up from many places never makes one hot item.


@dataclass(frozen=True)
class VelocityCharge:
    """Add one sign-up to counter `key`; with a `limit`, only while the counter is under it."""

    key: str
    limit: int | None
    expires_at: int


class VelocityExceeded(Exception):
    """The counter was at its limit: nothing was written (the caller flags the referral and writes again)."""


class VelocityItem(Model):
    class Meta(_Meta):
        table_name = _table("INVITES_TABLE")

    pk = UnicodeAttribute(hash_key=True)
    n = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True, attr_name="expiresAt")


def _add_velocity(transaction: TransactWrite, charge: VelocityCharge) -> None:
    condition = None
    if charge.limit is not None:
        condition = VelocityItem.n.does_not_exist() | (VelocityItem.n < charge.limit)
    transaction.update(
        VelocityItem(charge.key),
        actions=[VelocityItem.n.add(1), VelocityItem.expires_at.set(charge.expires_at)],
        condition=condition,
    )
