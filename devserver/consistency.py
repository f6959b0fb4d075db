"""Reads as DynamoDB serves them: eventually consistent reads and index queries that may lag behind writes.

moto answers every read from the latest state. DynamoDB does not: GetItem, BatchGetItem (per table), Query and
Scan are eventually consistent unless the request sets ConsistentRead, and a read of a global secondary index
always is (ConsistentRead true on one is a ValidationException); a write reaches a GSI asynchronously. Writes,
their conditions and TransactGetItems always act on the latest committed item. (The DynamoDB API reference,
as botocore ships it: GetItem, BatchGetItem, QueryInput/ScanInput.ConsistentRead; the Developer Guide, "Read
consistency" and "Transactions: how it works".)

Switched on (`enable`, or REFERRALS_STALE_READS for `make dev` and for a test run), every successful write
remembers the image each item had before it, with two moments drawn for it from a seeded generator, each up to
`window` seconds later: when the write reaches the partition's lagging replica, and when it reaches each GSI of
the table (a replica or an index applies writes in order). An eventually consistent read of a partition is
answered, with chance `lagging`, by that replica; a GSI read always by the index. Such a read sees each item as
the replica or index holds it then: missing if it was created a moment ago, still there if it was deleted,
its old attributes (and, in an index, its old keys) if it was updated.

How: moto serves the read from a rewound table. Under the lock that makes each moto request atomic
(devserver.aws.request_lock), the lagging images are swapped into moto's table, moto answers the request as it
always does (key conditions, filters, projections, Limit, pages, COUNT, index keys all stay moto's), and the
latest images are put back before the lock is released. Nothing goes through botocore twice.

Time: wall-clock seconds by default (`make dev`); tests use `tick`, simulated seconds per DynamoDB request, so
that with the same seed the same sequence of requests sees the same stale answers. `settle()` lets everything
written so far arrive (what waiting a while does); `advance(seconds)` moves the clock on.

Not modelled: PartiQL (ExecuteStatement and friends are served consistent), streams, TTL deletion lag, and
the isolation of a multi-item read (each item of a Query is judged alone).
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

ENV = "REFERRALS_STALE_READS"  # "1" / "on", or settings: "window=1,lagging=0.5,seed=7,tick=0.01"
SEED_ENV = "REFERRALS_STALE_SEED"

_TARGET = "DynamoDB_20120810."
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
_READS = {"GetItem", "BatchGetItem", "Query", "Scan"}
_REGION = re.compile(r"dynamodb\.([a-z0-9-]+)\.")


@dataclass(frozen=True)
class Staleness:
    """How stale an eventually consistent read may be."""

    window: float = 1.0  # a write reaches the lagging replica, and each GSI, within this many seconds
    lagging: float = 0.5  # chance an eventually consistent base-table read is answered by the lagging replica
    seed: str = "0"
    tick: float | None = None  # simulated seconds per DynamoDB request; None: wall-clock time
    # "functions": only reads made inside a function's invocation (devserver.lambdas) may be stale, so what a test
    # reads itself to check the outcome is the truth; "all": every read (a test of the switch itself)
    scope: str = "functions"


def parse(spec: str | None, **defaults: Any) -> Staleness | None:
    """Staleness from REFERRALS_STALE_READS' syntax: empty, "0", "off" or "false" is off; "1", "on", "true" the
    defaults; else `name=value` pairs separated by commas: window, lagging, seed, tick (tick=real: wall-clock),
    scope (functions or all)."""
    spec = (spec or "").strip()
    if spec.lower() in {"", "0", "off", "false", "no"}:
        return None
    settings = Staleness(**defaults)
    if spec.lower() in {"1", "on", "true", "yes"}:
        return settings
    for part in spec.split(","):
        name, _, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if name in {"window", "lagging"}:
            settings = replace(settings, **{name: float(value)})
        elif name == "seed":
            settings = replace(settings, seed=value)
        elif name == "scope" and value in {"functions", "all"}:
            settings = replace(settings, scope=value)
        elif name == "tick":
            settings = replace(settings, tick=None if value in {"", "real", "none"} else float(value))
        else:
            raise ValueError(f"{ENV}: unknown setting {name!r} (window, lagging, seed, tick, scope)")
    return settings


def from_environment(**defaults: Any) -> Staleness | None:
    if os.environ.get(SEED_ENV) and "seed" not in defaults:
        defaults["seed"] = os.environ[SEED_ENV]
    return parse(os.environ.get(ENV), **defaults)


@dataclass
class _Write:
    before: Any  # moto Item (a private copy) or None: the item as it was before this write
    replica_at: float
    index_at: dict[str, float]


@dataclass
class _Pending:
    writes: list[_Write] = field(default_factory=list)

    def visible(self, now: float, index: str | None) -> tuple[bool, Any]:
        """(stale, image): the image a replica (index None) or a GSI holds at `now`."""
        for write in self.writes:
            at = write.replica_at if index is None else write.index_at.get(index, write.replica_at)
            if at > now:
                return True, write.before
        return False, None

    def arrived(self, now: float) -> bool:
        last = self.writes[-1]
        return last.replica_at <= now and all(at <= now for at in last.index_at.values())


@dataclass(frozen=True)
class StaleRead:
    """One item a read was answered with as it was before its latest write(s): for diagnosis."""

    operation: str
    table: str
    index: str | None
    key: tuple[Any, ...]
    present: bool  # whether the stale image exists (False: the read missed an item that exists now)


class _State:
    def __init__(self, settings: Staleness) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.requests = 0
        self.offset = 0.0
        self.pending: dict[tuple[str, Any, Any], _Pending] = {}
        self.stale_reads: deque[StaleRead] = deque(maxlen=500)
        self.stale_count = 0
        self.paused = 0

    def now(self) -> float:
        tick = self.settings.tick
        return (self.requests * tick if tick is not None else time.monotonic()) + self.offset

    def delay(self) -> float:
        return self.rng.uniform(0, self.settings.window)

    def prune(self, now: float) -> None:
        for key in [key for key, pending in self.pending.items() if pending.arrived(now)]:
            del self.pending[key]


_lock = threading.RLock()
_state: _State | None = None


def enable(settings: Staleness | None = None) -> Staleness:
    """Turn stale reads on (from now: nothing written before is pending)."""
    global _state
    settings = settings or Staleness()
    with _guard():
        _state = _State(settings)
    return settings


def disable() -> None:
    global _state
    with _guard():
        _state = None


def active() -> Staleness | None:
    return _state.settings if _state else None


def settle() -> None:
    """Every write so far has reached every replica and index (as after waiting longer than the window)."""
    with _guard():
        if _state:
            _state.pending.clear()


def advance(seconds: float) -> None:
    with _guard():
        if _state:
            _state.offset += seconds


@contextmanager
def latest() -> Iterator[None]:
    """Within it every read sees the latest state (for a test's oracle: what is true, not what a reader may
    see); writes go on being remembered, so reads after it may still be stale."""
    with _guard():
        if _state:
            _state.paused += 1
    try:
        yield
    finally:
        with _guard():
            if _state and _state.paused:
                _state.paused -= 1


def stale_reads() -> list[StaleRead]:
    """The latest reads answered from a lagging replica or index (at most 500), oldest first."""
    return list(_state.stale_reads) if _state else []


def stale_count() -> int:
    return _state.stale_count if _state else 0


def _guard() -> Any:
    from devserver.aws import request_lock

    return request_lock()


def install() -> None:
    """Wrap moto's request handler (once) and set the switch from REFERRALS_STALE_READS (wall-clock time)."""
    from moto.core.botocore_stubber import BotocoreStubber

    if not getattr(BotocoreStubber.process_request, "_stale_reads", False):
        original: Callable[..., Any] = BotocoreStubber.process_request

        def process_request(self: BotocoreStubber, request: Any) -> Any:
            if _state is None or not _is_dynamodb(request):
                return original(self, request)
            from devserver.aws import ANSWERED_ELSEWHERE

            if request.headers.get(ANSWERED_ELSEWHERE):
                return original(self, request)
            with _guard():
                state = _state
                if state is None:
                    return original(self, request)
                return _serve(state, lambda: original(self, request), request)

        process_request._stale_reads = True  # type: ignore[attr-defined]
        process_request._serialised = getattr(original, "_serialised", False)  # type: ignore[attr-defined]
        BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    settings = from_environment()
    if settings is None:
        disable()
    else:
        enable(settings)


def _target(request: Any) -> str:
    target = request.headers.get("X-Amz-Target") or ""
    return target.decode() if isinstance(target, bytes) else str(target)


def _is_dynamodb(request: Any) -> bool:
    return _target(request).startswith(_TARGET)


def _operation(request: Any) -> tuple[str, dict[str, Any]]:
    target = _target(request)
    body = request.body or b"{}"
    if hasattr(body, "read"):  # a stream: never for DynamoDB's JSON, but keep it readable for moto
        data = body.read()
        body.seek(0)
        body = data
    return target[len(_TARGET) :], json.loads(body)


def _backend(request: Any) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    match = _REGION.search(request.url)
    region = match.group(1) if match else os.environ.get("AWS_REGION", "us-east-1")
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][region]


def _serve(state: _State, serve: Callable[[], Any], request: Any) -> Any:
    state.requests += 1
    operation, body = _operation(request)
    now = state.now()
    if state.requests % 64 == 0:
        state.prune(now)
    if operation in _WRITES:
        return _write(state, serve, _backend(request), operation, body, now)
    if operation in _READS and not state.paused and (state.settings.scope == "all" or _in_function()):
        return _read(state, serve, _backend(request), operation, body, now)
    return serve()


def _in_function() -> bool:
    """Whether a function's invocation is making this request (devserver.lambdas marks the thread's context)."""
    try:
        from devserver.lambdas import current_invocation
    except ImportError:  # no mark to go by: judge every read
        return True
    return current_invocation() is not None


# ---------- writes: remember what each item was before, and when the write reaches each copy ----------


def _written_keys(operation: str, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(table, attributes holding the key, whether they are a whole item) of every item a write may change."""
    if operation == "PutItem":
        yield body["TableName"], body["Item"], True
    elif operation in {"UpdateItem", "DeleteItem"}:
        yield body["TableName"], body["Key"], False
    elif operation == "TransactWriteItems":
        for action in body.get("TransactItems", []):
            for kind, spec in action.items():
                if kind == "Put":
                    yield spec["TableName"], spec["Item"], True
                elif kind in {"Update", "Delete"}:
                    yield spec["TableName"], spec["Key"], False
    elif operation == "BatchWriteItem":
        for table, requests in body.get("RequestItems", {}).items():
            for one in requests:
                if "PutRequest" in one:
                    yield table, one["PutRequest"]["Item"], True
                elif "DeleteRequest" in one:
                    yield table, one["DeleteRequest"]["Key"], False


def _key_of(table: Any, attributes: dict[str, Any]) -> tuple[Any, Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if table.hash_key_attr not in attributes:
        return None
    hash_key = DynamoType(attributes[table.hash_key_attr])
    if table.range_key_attr is None:
        return hash_key, None
    if table.range_key_attr not in attributes:
        return None
    return hash_key, DynamoType(attributes[table.range_key_attr])


def _current(table: Any, hash_key: Any, range_key: Any) -> Any:
    if range_key is None:
        return table.items.get(hash_key) if hash_key in table.items else None
    return table.items[hash_key].get(range_key) if hash_key in table.items else None


def _write(
    state: _State, serve: Callable[[], Any], backend: Any, operation: str, body: dict[str, Any], now: float
) -> Any:
    before: list[tuple[str, Any, Any, Any]] = []
    for name, attributes, _ in _written_keys(operation, body):
        table = backend.tables.get(name)
        key = _key_of(table, attributes) if table is not None else None
        if key is not None:
            before.append((name, *key, copy.deepcopy(_current(table, *key))))
    answer = serve()
    for name, hash_key, range_key, old in before:
        table = backend.tables.get(name)  # a failed transaction puts back a copy of the whole table
        if table is None:
            continue
        new = _current(table, hash_key, range_key)
        if (old is None) == (new is None) and (old is None or old == new):
            continue  # refused by its condition, or changed nothing
        pending = state.pending.setdefault((name, hash_key, range_key), _Pending())
        last = pending.writes[-1] if pending.writes else None
        replica_at = max(now + state.delay(), last.replica_at if last else 0.0)
        index_at = {
            index.name: max(now + state.delay(), last.index_at.get(index.name, 0.0) if last else 0.0)
            for index in table.global_indexes
        }
        pending.writes.append(_Write(old, replica_at, index_at))
    return answer


# ---------- reads: answer from a rewound table ----------


def _read(
    state: _State, serve: Callable[[], Any], backend: Any, operation: str, body: dict[str, Any], now: float
) -> Any:
    # (table, index or None for a replica, the keys the read may touch or None for all, one coin per item?)
    plans: list[tuple[str, str | None, list[tuple[Any, Any]] | None, bool]] = []
    values = _values(body) if operation == "Query" else None
    if operation == "GetItem":
        if not body.get("ConsistentRead"):
            plans.append((body["TableName"], None, _keys(backend, body["TableName"], [body["Key"]]), True))
    elif operation == "BatchGetItem":
        for name, spec in body.get("RequestItems", {}).items():
            if not spec.get("ConsistentRead"):
                plans.append((name, None, _keys(backend, name, spec.get("Keys", [])), True))
    else:  # Query, Scan
        name = body["TableName"]
        table = backend.tables.get(name)
        index = body.get("IndexName")
        if table is not None and index and any(i.name == index for i in table.global_indexes):
            plans.append((name, index, None, False))
        elif not body.get("ConsistentRead"):
            plans.append((name, None, None, operation == "Scan"))
    swaps: list[tuple[Any, Any, Any, Any]] = []
    try:
        for name, index, keys, coin_per_item in plans:
            swaps += _rewind(state, backend, operation, name, index, keys, coin_per_item, values, now)
        return serve()
    finally:
        for table, hash_key, range_key, image in reversed(swaps):
            _put(table, hash_key, range_key, image)


def _keys(backend: Any, name: str, keys: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    table = backend.tables.get(name)
    found = [_key_of(table, key) for key in keys] if table is not None else []
    return [key for key in found if key is not None]


def _rewind(
    state: _State,
    backend: Any,
    operation: str,
    name: str,
    index: str | None,
    keys: list[tuple[Any, Any]] | None,
    coin_per_item: bool,
    values: list[Any] | None,
    now: float,
) -> list[tuple[Any, Any, Any, Any]]:
    """Put into moto's table the images this read sees; returns what to put back."""
    table = backend.tables.get(name)
    if table is None:
        return []
    wanted = set(keys) if keys is not None else None
    candidates = [
        (key, pending)
        for key, pending in state.pending.items()
        if key[0] == name and (wanted is None or (key[1], key[2]) in wanted)
    ]
    swaps = []
    partitions: dict[Any, bool] = {}
    for (_, hash_key, range_key), pending in candidates:
        if index is None:
            # A replica answers for a partition; GetItem/BatchGetItem/Scan judge each item, a Query its partition
            lagging_key = (hash_key, range_key) if coin_per_item else hash_key
            if lagging_key not in partitions:
                partitions[lagging_key] = state.rng.random() < state.settings.lagging
            if not partitions[lagging_key]:
                continue
        stale, image = pending.visible(now, index)
        if not stale:
            continue
        current = _current(table, hash_key, range_key)
        if values is not None and not _in_partition(table, index, hash_key, (current, image), values):
            continue  # a Query reads one partition (of the table or the index): leave the others alone
        swaps.append((table, hash_key, range_key, current))
        _put(table, hash_key, range_key, image)
        state.stale_count += 1
        state.stale_reads.append(
            StaleRead(operation, name, index, (hash_key.value, getattr(range_key, "value", None)), image is not None)
        )
    return swaps


def _values(body: dict[str, Any]) -> list[Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if not body.get("KeyConditionExpression"):
        return None  # the legacy KeyConditions: judge every item
    return [DynamoType(value) for value in body.get("ExpressionAttributeValues", {}).values()]


def _in_partition(table: Any, index: str | None, hash_key: Any, images: tuple[Any, Any], values: list[Any]) -> bool:
    """Whether an item (as it is, or as the read would see it) may be in the partition a Query names: its
    partition key's value is among the query's values (the key condition is an equality on it)."""
    if index is None:
        return hash_key in values
    schema = next(i.schema for i in table.global_indexes if i.name == index)
    names = [key["AttributeName"] for key in schema if key["KeyType"] == "HASH"]
    found = (image.attrs.get(name) for image in images if image is not None for name in names)
    return any(value is not None and value in values for value in found)


def _put(table: Any, hash_key: Any, range_key: Any, image: Any) -> None:
    if range_key is None:
        if image is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = image
    elif image is None:
        if hash_key in table.items:
            table.items[hash_key].pop(range_key, None)
    else:
        table.items[hash_key][range_key] = image
