"""The invites table's writes: rate-limit buckets (GCRA), address claims for the cool-down and suppression, and
the sign-up velocity counters that ride in a registration's transaction. No write here reads first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.transactions import TransactWrite

from referrals.errors import Busy
from referrals.ratelimit import Attempt, Bucket, Decision, after_refusal, first_attempt
from referrals.storage.client import (
    _TRANSACTION_ATTEMPTS,
    _failure,
    _query,
    _refused_by_condition,
    _update_or_old,
)
from referrals.storage.models import BY_INVITER_INDEX, AddressItem, BucketItem, VelocityItem


def take_tokens(key: str, bucket: Bucket, now_ms: int, cost: int) -> Decision:
    """Spend `cost` tokens of bucket `key` at `now_ms`: one conditional UpdateItem, never a read.

    The protocol (which write first, what a refusal means) is referrals.ratelimit's; this runs its writes.
    A second write is needed only when the bucket is part-spent; a refused caller costs one request.
    """
    expires = bucket.expires_at(now_ms)
    writer = uuid.uuid4().hex
    step: Attempt | Decision = first_attempt(bucket, now_ms, cost)
    for _ in range(_TRANSACTION_ATTEMPTS):
        if isinstance(step, Decision):
            return step
        written, stored = bucket_write(key, step, expires, writer)
        if written:
            return Decision(True)
        # A concurrent writer may move the TAT again before our next write: hence the loop.
        step = after_refusal(bucket, now_ms, cost, stored)
    raise Busy()


def bucket_write(key: str, step: Attempt, expires_at_s: int, writer: str | None = None) -> tuple[bool, int | None]:
    """One write of the protocol as a conditional UpdateItem: (written, the stored TAT when refused).

    Both writes set an absolute TAT (a compare-and-set for `queued`), so botocore sending the request again after
    its answer was lost cannot charge twice: the repeat is refused, and a refusal showing our own `writer` and the
    TAT we meant to write is our first request, applied: written."""
    item = BucketItem(BucketItem.key_for(key))
    actions = [BucketItem.tat.set(step.new_tat_ms), BucketItem.expires_at.set(expires_at_s)]
    if writer is not None:
        actions.append(BucketItem.writer.set(writer))
    if step.fresh:
        condition = BucketItem.tat.does_not_exist() | (BucketItem.tat < step.floor_ms)
    else:
        condition = BucketItem.tat == step.seen_tat_ms
    old = _update_or_old(item, actions, condition)
    if old is None:
        return True, None
    stored_item = BucketItem.from_raw_data(old) if old else None
    stored = None if stored_item is None or stored_item.tat is None else int(stored_item.tat)
    if writer is not None and stored_item is not None and stored_item.writer == writer and stored == step.new_tat_ms:
        return True, None  # our own write, applied by an earlier attempt whose answer was lost
    return False, stored


def return_tokens(key: str, bucket: Bucket, cost: int) -> None:
    """Give back `cost` tokens (mail SES refused). No item means a full bucket: nothing to give back.

    Tagged with a random id of this call, and conditioned on the item not bearing it yet: botocore sending the
    request again after its answer was lost is refused, so the tokens come back once."""
    refund = uuid.uuid4().hex
    try:
        BucketItem(BucketItem.key_for(key)).update(
            actions=[BucketItem.tat.add(-bucket.increment(cost)), BucketItem.refund.set(refund)],
            condition=BucketItem.tat.exists() & (BucketItem.refund.does_not_exist() | (BucketItem.refund != refund)),
        )
    except PynamoDBException as error:
        if _refused_by_condition(error):
            return
        raise _failure(error, "UpdateItem") from error


def claim_address(site: str, address_hash: str, customer_id: str, now_s: int, until_s: int) -> str | None:
    """Mark an address invited until `until_s`, unless it is suppressed or someone invited it since the last
    cool-down: None when claimed, else "SUPPRESSED" or "RECENTLY_INVITED". One conditional UpdateItem.

    The claim carries a random id of this call: when botocore sends it again after the answer was lost, the repeat
    is refused by our own claim, which the refusal's item shows (the same id): claimed, not RECENTLY_INVITED."""
    item = AddressItem(AddressItem.key_for(site, address_hash))
    claim_id = uuid.uuid4().hex
    actions = [
        AddressItem.invited_until.set(until_s),
        AddressItem.invited_at.set(now_s),
        AddressItem.invited_by.set(customer_id),
        AddressItem.expires_at.set(until_s),
        AddressItem.claim_id.set(claim_id),
    ]
    condition = AddressItem.suppressed_at.does_not_exist() & (
        AddressItem.invited_until.does_not_exist() | (AddressItem.invited_until <= now_s)
    )
    old = _update_or_old(item, actions, condition)
    if old is None:
        return None
    stored = AddressItem.from_raw_data(old)
    if stored.suppressed_at:
        return "SUPPRESSED"
    if stored.claim_id == claim_id and stored.invited_by == customer_id and stored.invited_at == now_s:
        return None  # our own claim, applied by an attempt whose answer was lost
    return "RECENTLY_INVITED"


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
        if _refused_by_condition(error):
            return
        raise _failure(error, "DeleteItem") from error


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
                AddressItem.claim_id.remove(),
            ]
        )
    except PynamoDBException as error:
        raise _failure(error, "UpdateItem") from error


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
    return sum(int(page.get("Count", 0)) for page in _query(request))


# ---------- Sign-up velocity counters (docs/rewards.md "Review") ----------
# One counter per (referrer, source digest, fixed window): `VELOCITY#<referrer>#<window>#<digest>`. It rides in the
# registration transaction, so counting costs no request of its own; its TTL removes it a window after its end.
# One item per source, not per referrer: a viral code signed up from many places never makes one hot item.


@dataclass(frozen=True)
class VelocityCharge:
    """Add one sign-up to counter `key`; with a `limit`, only while the counter is under it."""

    key: str
    limit: int | None
    expires_at: int


class VelocityExceeded(Exception):
    """The counter was at its limit: nothing was written (the caller flags the referral and writes again)."""


def _add_velocity(transaction: TransactWrite, charge: VelocityCharge) -> None:
    condition = None
    if charge.limit is not None:
        condition = VelocityItem.n.does_not_exist() | (VelocityItem.n < charge.limit)
    transaction.update(
        VelocityItem(charge.key),
        actions=[VelocityItem.n.add(1), VelocityItem.expires_at.set(charge.expires_at)],
        condition=condition,
    )
