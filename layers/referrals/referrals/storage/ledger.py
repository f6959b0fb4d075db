"""Rewards' store (docs/rewards.md): a referee's ledger, the due index, a change committed in one request,
and the outbox's deletes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.transactions import TransactWrite

from referrals.storage.client import (
    _batch_get,
    _failure,
    _query,
    _query_page,
    _refused_by_condition,
    _retry_conflicts,
    _transact,
)
from referrals.storage.figures import FigureChange, add_figures
from referrals.storage.models import DUE_INDEX, OrderFactItem, OutboxItem, ReferralItem, RewardCapItem, referee_pk


@dataclass(frozen=True)
class RefereeLedger:
    referral: ReferralItem | None
    facts: list[OrderFactItem]


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
    for page in _query(request):
        for raw in page.get("Items", []):
            if raw["sk"]["S"] == "REFERRAL":
                referral = ReferralItem.from_raw_data(raw)
            elif raw["sk"]["S"].startswith("ORDER#"):
                facts.append(OrderFactItem.from_raw_data(raw))
    return RefereeLedger(referral, facts)


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
    page = _query_page(request)
    found: list[ReferralItem | OutboxItem] = []
    for raw in page.get("Items", []):
        sort_key = raw["sk"]["S"]
        if sort_key == "REFERRAL":
            found.append(ReferralItem.from_raw_data(raw))
        elif sort_key.startswith("EVENT#"):
            found.append(OutboxItem.from_raw_data(raw))
    return found, page.get("LastEvaluatedKey")


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
    figures: list[FigureChange] = field(default_factory=list)  # the programme's counters the move changes


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
    (facts, events, referral, counter, figures), all or nothing."""
    actions, condition = _referral_write(change)
    if not change.facts and not change.events and change.cap is None and not change.figures:
        try:  # a transaction holding the referral (a review, an order event) is waited out, not fatal to a run
            _retry_conflicts(lambda: change.referral.update(actions=actions, condition=condition), "UpdateItem")
        except PynamoDBException as error:
            if _refused_by_condition(error):
                return Commit.STALE
            raise _failure(error, "UpdateItem") from error
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
        add_figures(transaction, change.figures)  # last: the positions read below stay

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


def still_in_outbox(items: list[OutboxItem]) -> list[OutboxItem]:
    """Of the outbox records the due index showed, those still in the table, in their order: one strongly
    consistent BatchGetItem (none for none). An index may show a record published and deleted a moment ago;
    republished, its event would go out twice."""
    if not items:
        return []
    found = _batch_get({OutboxItem: [{"pk": item.pk, "sk": item.sk} for item in items]}, consistent=True)
    present = {(item.pk, item.sk) for item in found[OutboxItem]}
    return [item for item in items if (item.pk, item.sk) in present]


def delete_outbox(items: Iterable[OutboxItem]) -> None:
    """Forget events EventBridge accepted: BatchWriteItem, 25 to a request."""
    try:
        with OutboxItem.batch_write() as batch:
            for item in items:
                batch.delete(item)
    except PynamoDBException as error:
        raise _failure(error, "BatchWriteItem") from error
