"""The requests themselves: the one low-level connection, and each way of talking to DynamoDB written once
(BatchGetItem, paged Query, TransactWriteItems, an UpdateItem that returns the refused item), with the retries
and backoff they share. SDK errors leave this module as answers (a condition refused), as `Busy` (contention,
throttling, 5xx or timeouts that outlasted the retries) or as `Refused` (AWS refused the request itself: access
denied, invalid, no such table; logged here once, never retried): `classify` tells them apart, for every module
that calls AWS (docs/faults.md, "Retried or refused")."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from referrals.config import CLIENT_TIMEOUTS, StorageSettings, load_storage_settings
from referrals.errors import Busy, Refused

_RETRYABLE_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
_TRANSACTION_ATTEMPTS = 6

# Error codes worth asking again: contention, throttling and the service's own failures (with any 5xx status and
# timeouts or connection errors). botocore's standard mode retries all but the transaction conflicts already.
RETRYABLE_CODES = frozenset(
    {
        "TransactionConflictException",
        "TransactionInProgressException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
CONFLICT = "TransactionConflictException"
RETRYABLE = "retryable"
REFUSED = "refused"
CONDITION = "condition"

log = logging.getLogger("referrals")


def _client_error(error: BaseException) -> ClientError | None:
    """The botocore ClientError behind an error (pynamodb keeps it as `cause`), if there is one."""
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None or isinstance(seen, ClientError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    return None


def error_code(error: BaseException) -> str:
    """AWS's error code for an SDK error, or the exception's name when AWS never answered (a timeout)."""
    client_error = _client_error(error)
    if client_error is not None:
        return str(client_error.response.get("Error", {}).get("Code") or "Unknown")
    cause = getattr(error, "cause", None)
    return type(cause if isinstance(cause, BaseException) else error).__name__


def classify(error: BaseException) -> str:
    """CONDITION (a write's condition was false: an answer), RETRYABLE (conflicts, throttling, 5xx, timeouts and
    connection errors: the same request may pass later) or REFUSED (anything else AWS or botocore refused:
    AccessDenied*, ValidationException, ResourceNotFoundException, UnrecognizedClient, a bad parameter...)."""
    client_error = _client_error(error)
    if client_error is not None:
        code = error_code(client_error)
        status = client_error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code == "ConditionalCheckFailedException":
            return CONDITION
        return RETRYABLE if code in RETRYABLE_CODES or int(status) >= 500 else REFUSED
    cause = getattr(error, "cause", None) or error.__cause__ or error
    if isinstance(cause, (BotoConnectionError, HTTPClientError)):  # timeouts, connections reset or refused
        return RETRYABLE
    return REFUSED


def refusal(error: BaseException, service: str, operation: str) -> Refused:
    """The error to raise for a refused request, logged once here: service, operation and code, nothing else
    (AWS's message may quote the request)."""
    refused = Refused(service, operation, error_code(error))
    log.error(
        "AWS refused a request",
        extra={"awsService": service, "operation": operation, "errorCode": refused.code},
    )
    return refused


def _failure(error: BaseException, operation: str) -> Exception:
    """What a DynamoDB error our retries are done with becomes: Busy when asking again later may pass, else Refused."""
    if classify(error) == RETRYABLE:
        return Busy()
    return refusal(error, "DynamoDB", operation)


def _retry_conflicts[T](call: Callable[[], T], operation: str) -> T:
    """A single-item write, asked again (bounded, jittered backoff) while another transaction holds the item:
    botocore retries throttling and 5xx itself, never TransactionConflictException. Other errors propagate."""
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            return call()
        except (ClientError, PynamoDBException) as error:
            if error_code(error) != CONFLICT or attempt == _TRANSACTION_ATTEMPTS - 1:
                raise
        _backoff(attempt)
    raise AssertionError("unreachable")


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
        _connection = Connection(
            region=settings().region,
            connect_timeout_seconds=CLIENT_TIMEOUTS.connect_seconds,
            read_timeout_seconds=CLIENT_TIMEOUTS.read_seconds,
            max_retry_attempts=CLIENT_TIMEOUTS.total_max_attempts - 1,
        )
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
        except (BotoCoreError, ClientError) as error:  # botocore already retried throttling
            raise _failure(error, "BatchGetItem") from error
        for table, items in answer.get("Responses", {}).items():
            found[by_table[table]].extend(items)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return found
        _backoff(attempt)
    raise Busy()


def _batch_get(keys: dict[type[Model], list[dict[str, Any]]], consistent: bool = False) -> dict[type[Model], list[Any]]:
    """As _batch_get_raw, each item read into its model."""
    found = _batch_get_raw(keys, consistent)
    return {model: [model.from_raw_data(raw) for raw in items] for model, items in found.items()}


def _get[M: Model](model: type[M], hash_key: Any, *, consistent: bool = False) -> M | None:
    """One item by its key (one GetItem, strongly consistent when asked), None when there is none."""
    try:
        return model.get(hash_key, consistent_read=consistent)
    except model.DoesNotExist:
        return None
    except PynamoDBException as error:
        raise _failure(error, "GetItem") from error


def _query_page(request: dict[str, Any]) -> dict[str, Any]:
    """One Query request through pynamodb's client: the answer as DynamoDB gives it (`Items`, or `Count` with
    Select COUNT, and `LastEvaluatedKey`). The items may be of several models, told apart by `sk`."""
    client = _client()
    try:
        return client.query(**request)
    except (BotoCoreError, ClientError) as error:  # botocore already retried throttling
        raise _failure(error, "Query") from error


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
    """Run a transaction, retrying conflicts and throttling; the reasons when a condition failed. A transaction
    AWS refused (no cancellation reasons and a refusing code, or a reason such as ValidationError) raises
    Refused at once."""
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            # A token per attempt of ours, kept by botocore's retries (they resend the same request): a transaction
            # applied whose answer was lost succeeds when sent again, instead of failing its own conditions.
            token = str(uuid.uuid4())
            with TransactWrite(connection=_shared_connection(), client_request_token=token) as transaction:
                write(transaction)
            return None
        except TransactWriteError as error:
            reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
            if "ConditionalCheckFailed" in reasons:
                return reasons
            if not reasons:
                # The request itself failed, not one of its items: botocore has already spent its attempts on a
                # timeout, a 5xx or throttling, so asking again here would only run the function past its timeout.
                raise _failure(error, "TransactWriteItems") from error
            if not any(reason in _RETRYABLE_REASONS for reason in reasons):
                raise refusal(error, "DynamoDB", "TransactWriteItems") from error
            if on_contention is not None:
                on_contention(reasons)
            _backoff(attempt)
        except PynamoDBException as error:
            raise _failure(error, "TransactWriteItems") from error
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
        _retry_conflicts(lambda: connection.connection.client.update_item(**request), "UpdateItem")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return error.response.get("Item") or {}
        raise _failure(error, "UpdateItem") from error  # botocore has already retried throttling
    except BotoCoreError as error:  # timeouts and connection errors, also retried already
        raise _failure(error, "UpdateItem") from error
    return None
