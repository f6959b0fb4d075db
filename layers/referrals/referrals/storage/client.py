"""The requests themselves: the one low-level connection, and each way of talking to DynamoDB written once
(BatchGetItem, paged Query, TransactWriteItems, an UpdateItem that returns the refused item), with the retries
and backoff they share. SDK errors leave this module as domain errors (Busy) or as answers."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from referrals.config import StorageSettings, load_storage_settings
from referrals.errors import Busy

_RETRYABLE_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
_TRANSACTION_ATTEMPTS = 6


@cache
def settings() -> StorageSettings:
    """The region and the tables, read from the environment once, when first needed: each function asks at its
    cold start (so a deployment without them stops there), while importing the domain needs none of it."""
    return load_storage_settings()


_connection: Connection | None = None


def _client() -> Any:
    """The low-level client pynamodb uses, for the calls it lacks: a BatchGetItem across tables, raw Queries."""
    return _shared_connection().client


def _shared_connection() -> Connection:
    global _connection
    if _connection is None:
        _connection = Connection(region=settings().region)
    return _connection


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.01 * 2**attempt))


def _serialise(model: type[Model], attr_name: str, value: Any) -> dict[str, Any]:
    attribute = next(a for a in model.get_attributes().values() if a.attr_name == attr_name)
    return {attribute.attr_type: attribute.serialize(value)}


def _batch_get_raw(
    keys: dict[type[Model], list[dict[str, Any]]], consistent: bool = False
) -> dict[type[Model], list[dict[str, Any]]]:
    """The raw items of several tables in one BatchGetItem (strongly consistent when asked), retrying only what
    DynamoDB left unprocessed. Keys are given by attribute name (`customerId`); the items come back by model."""
    by_table = {model.Meta.table_name: model for model in keys}
    request: dict[str, Any] = {}
    for model, items in keys.items():
        if items:
            table: dict[str, Any] = {"Keys": [{k: _serialise(model, k, v) for k, v in key.items()} for key in items]}
            if consistent:
                table["ConsistentRead"] = True
            request[model.Meta.table_name] = table
    found: dict[type[Model], list[dict[str, Any]]] = {model: [] for model in keys}
    if not request:
        return found
    client = _client()
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            answer = client.batch_get_item(RequestItems=request)
        except Exception as error:  # botocore already retried throttling; what is left is ours to report
            raise Busy() from error
        for table, items in answer.get("Responses", {}).items():
            found[by_table[table]].extend(items)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return found
        _backoff(attempt)
    raise Busy()


def _batch_get(keys: dict[type[Model], list[dict[str, Any]]]) -> dict[type[Model], list[Any]]:
    """As _batch_get_raw, each item read into its model."""
    return {model: [model.from_raw_data(raw) for raw in items] for model, items in _batch_get_raw(keys).items()}


def _get[M: Model](model: type[M], hash_key: Any) -> M | None:
    """One item by its key (one GetItem), None when there is none."""
    try:
        return model.get(hash_key)
    except model.DoesNotExist:
        return None
    except PynamoDBException as error:
        raise Busy() from error


def _query_page(request: dict[str, Any]) -> dict[str, Any]:
    """One Query request through pynamodb's client: the answer as DynamoDB gives it (`Items`, or `Count` with
    Select COUNT, and `LastEvaluatedKey`). The items may be of several models, told apart by `sk`."""
    client = _client()
    try:
        return client.query(**request)
    except Exception as error:  # botocore already retried throttling
        raise Busy() from error


def _query(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page of a Query, one request each, following `LastEvaluatedKey` until there is none."""
    request = dict(request)
    while True:
        page = _query_page(request)
        yield page
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


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


def _refused_by_condition(error: PynamoDBException) -> bool:
    """Whether pynamodb's error is DynamoDB refusing a write's condition (not the store failing)."""
    cause = getattr(error, "cause", None)
    response = getattr(cause, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


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
