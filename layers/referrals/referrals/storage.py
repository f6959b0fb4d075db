"""The only module that touches DynamoDB. pynamodb models map items; SDK errors become domain errors."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from referrals.errors import Busy

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


def load_customer_view(customer_id: str, shards: int) -> CustomerView | None:
    """The account and its count, in one request."""
    found = _batch_get(
        {
            CustomerItem: [{"customerId": customer_id}],
            CountItem: [{"referrerId": customer_id, "shard": shard} for shard in range(shards)],
        }
    )
    if not found[CustomerItem]:
        return None
    return CustomerView(found[CustomerItem][0], sum(int(item.count) for item in found[CountItem]))


def load_registration_context(customer_id: str, code: str | None) -> tuple[bool, CodeItem | None]:
    """Whether the account exists, and the code's item if a code is given, in one request."""
    keys: dict[type[Model], list[dict[str, Any]]] = {CustomerItem: [{"customerId": customer_id}]}
    if code:
        keys[CodeItem] = [{"code": code}]
    found = _batch_get(keys)
    code_items = found.get(CodeItem) or []
    return bool(found[CustomerItem]), (code_items[0] if code_items else None)


def customer_exists(customer_id: str) -> bool:
    return load_registration_context(customer_id, None)[0]


def create_account(customer: CustomerItem, code: CodeItem, referral: ReferralItem | None, count_shard: int) -> None:
    """Account, code, link and the referrer's count in one transaction: all of it or none of it.

    Raises AccountExists when the customer already has an account (a retry or a race lost),
    CodeTaken when the fresh code collided with an existing one.
    """

    def write(transaction: TransactWrite) -> None:
        transaction.save(customer, condition=CustomerItem.customer_id.does_not_exist())
        transaction.save(code, condition=CodeItem.code.does_not_exist())
        if referral is not None:
            transaction.save(referral, condition=ReferralItem.pk.does_not_exist())
            transaction.update(
                CountItem(referral.referrer_id, count_shard),
                actions=[CountItem.count.add(1)],
            )

    reasons = _transact(write)
    if reasons is None:
        return
    if reasons[0] == "ConditionalCheckFailed":
        raise AccountExists()
    if reasons[1] == "ConditionalCheckFailed":
        raise CodeTaken()
    if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
        raise AccountExists()
    raise Busy()


def _transact(write: Callable[[TransactWrite], None]) -> list[str | None] | None:
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
