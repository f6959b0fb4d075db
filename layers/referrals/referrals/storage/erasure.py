"""Privacy (docs/privacy.md): erasure and the export's pages.

Erasure strips one customer's personal data in a bounded number of requests whatever they did: one consistent
BatchGetItem (their account, the referral that brought them, their invite bucket) and one TransactWriteItems.
Export reads by key and through the ByReferrer and ByInviter indexes. Nothing here scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.transactions import TransactWrite

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
)


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
            transaction.delete(BucketItem(BucketItem.key_for(customer_bucket_key(customer_id))))

    return _transact(write) is None


def referrals_made_page(
    referrer_id: str, after: dict[str, str] | None, limit: int
) -> tuple[list[ReferralItem], dict[str, str] | None]:
    """One page of the referrals a customer made, newest first (the ByReferrer index): the items and, when
    there may be more, the key to go on from (`pk`, `sk`, `createdAt`)."""
    request: dict[str, Any] = {
        "TableName": ReferralItem.Meta.table_name,
        "IndexName": BY_REFERRER_INDEX,
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
    page = _query_page(request)
    found = [ReferralItem.from_raw_data(raw) for raw in page.get("Items", [])]
    last = page.get("LastEvaluatedKey")
    following = {name: last[name]["S"] for name in ("pk", "sk", "createdAt")} if last else None
    return found, following
