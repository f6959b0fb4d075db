"""Privacy (docs/privacy.md): erasure and the export's pages.

Erasure strips one customer's personal data in a bounded number of requests whatever they did: one consistent
BatchGetItem (their account, the referral that brought them, their invite bucket) and one TransactWriteItems.
Export reads by key and through the ByReferrerShard and ByInviter indexes. Nothing here scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.transactions import TransactWrite

from referrals import codes
from referrals.storage.client import _batch_get_raw, _query_page, _transact
from referrals.storage.models import (
    BY_REFERRER_INDEX,
    BucketItem,
    CountItem,
    CustomerItem,
    ReferralItem,
    _ErasableCode,
    _ErasableReferral,
    customer_bucket_key,
    shard_key,
    shards_of,
)


@dataclass(frozen=True)
class ReferralsCursor:
    """Where an export of referrals made goes on: a count shard, and the last key read in it (None: its start)."""

    shard: int
    last: dict[str, str] | None  # `pk`, `sk`, `createdAt`


@dataclass(frozen=True)
class ErasureTargets:
    """What of one customer is stored under keys their id gives: all that erasure has to change."""

    customer: CustomerItem | None
    referral: ReferralItem | None  # the referral that brought them (they are the friend)
    referral_erased: bool
    invite_bucket: bool


def load_erasure_targets(customer_id: str) -> ErasureTargets:
    """One strongly consistent BatchGetItem over three tables: an account created a moment ago is not missed."""
    referral_pk, referral_sk = ReferralItem.key_for(customer_id)
    found = _batch_get_raw(
        {
            CustomerItem: [{"customerId": customer_id}],
            ReferralItem: [{"pk": referral_pk, "sk": referral_sk}],
            BucketItem: [{"pk": BucketItem.key_for(customer_bucket_key(customer_id))}],
        },
        consistent=True,
    )
    customers, referrals = found[CustomerItem], found[ReferralItem]
    return ErasureTargets(
        customer=CustomerItem.from_raw_data(customers[0]) if customers else None,
        referral=ReferralItem.from_raw_data(referrals[0]) if referrals else None,
        referral_erased=bool(referrals and "erasedAt" in referrals[0]),
        invite_bucket=bool(found[BucketItem]),
    )


def erase_customer(customer_id: str, targets: ErasureTargets, erased_name: str, erased_at: str) -> bool:
    """Erase what `targets` found, in one transaction: all or none. False when a condition failed because a
    concurrent erasure got there first (read again: there will be less, or nothing, left to do).

    At most 3 + the codes the customer held (16: codes.MAX_EARLIER_CODES) + CustomerItem.count_shards items (64
    shards at most): 83, inside TransactWriteItems' 100.
    """
    customer = targets.customer

    def write(transaction: TransactWrite) -> None:
        if customer is not None:
            # Only the account as read: a code chosen, or a count spread, since the read would be missed (left
            # active, or left undeleted), so either makes this fail and erasure read again.
            same_shards = CustomerItem.count_shards == shards_of(customer)
            if shards_of(customer) == 1:
                same_shards = same_shards | CustomerItem.count_shards.does_not_exist()
            transaction.delete(
                CustomerItem(customer_id),
                condition=CustomerItem.customer_id.exists() & (CustomerItem.code == customer.code) & same_shards,
            )
            # The current code and every earlier one (changeReferralCode): all stop working, none is issued again.
            for code_key in sorted({codes.key(customer.code), *(customer.former_codes or ())}):
                transaction.update(
                    _ErasableCode(code_key),
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
            for shard in range(shards_of(customer)):
                transaction.delete(CountItem.of(customer_id, shard))
        if targets.referral is not None and not targets.referral_erased:
            transaction.update(
                _ErasableReferral(*ReferralItem.key_for(customer_id)),
                actions=[_ErasableReferral.friend_name.set(erased_name), _ErasableReferral.erased_at.set(erased_at)],
                condition=_ErasableReferral.pk.exists(),
            )
        if targets.invite_bucket:
            transaction.delete(BucketItem(BucketItem.key_for(customer_bucket_key(customer_id))))

    return _transact(write) is None


def referrals_made_page(
    referrer_id: str, shards: int, after: ReferralsCursor | None, limit: int
) -> tuple[list[ReferralItem], ReferralsCursor | None]:
    """One page of the referrals a customer made (the ByReferrerShard index): count shard by count shard, each newest
    first; the items and, when there may be more, where to go on from. Queries shards in turn until the page is
    full: one Query while the count has one shard."""
    found: list[ReferralItem] = []
    cursor = after or ReferralsCursor(0, None)
    while cursor.shard < shards and len(found) < limit:
        key = shard_key(referrer_id, cursor.shard)
        request: dict[str, Any] = {
            "TableName": ReferralItem.Meta.table_name,
            "IndexName": BY_REFERRER_INDEX,
            "KeyConditionExpression": "referrerShard = :key",
            "ExpressionAttributeValues": {":key": {"S": key}},
            "ScanIndexForward": False,
            "Limit": limit - len(found),
        }
        if cursor.last:
            request["ExclusiveStartKey"] = {name: {"S": value} for name, value in cursor.last.items()} | {
                "referrerShard": {"S": key}
            }
        page = _query_page(request)
        # Only the referrer's own: another customer's id could equal a shard's key `<referrerId>#<shard>`.
        items = page.get("Items", [])
        found.extend(ReferralItem.from_raw_data(raw) for raw in items if raw["referrerId"]["S"] == referrer_id)
        last = page.get("LastEvaluatedKey")
        if last:
            cursor = ReferralsCursor(cursor.shard, {name: last[name]["S"] for name in ("pk", "sk", "createdAt")})
        else:
            cursor = ReferralsCursor(cursor.shard + 1, None)
    return found, (cursor if cursor.shard < shards else None)
