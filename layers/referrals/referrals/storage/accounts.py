"""Accounts: registration's reads and its one transaction, the customer view, the code cache, count shards."""

from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from referrals import codes, counting
from referrals.errors import Busy, Refused
from referrals.storage.client import (
    _RETRYABLE_REASONS,
    RETRYABLE,
    _batch_get,
    _batch_get_raw,
    _failure,
    _get,
    _refused_by_condition,
    _shared_connection,
    _transact,
    classify,
    refusal,
)
from referrals.storage.figures import FigureChange, add_figures
from referrals.storage.invites import VelocityCharge, VelocityExceeded, _add_velocity
from referrals.storage.models import (
    CodeItem,
    CountItem,
    CustomerItem,
    ReferralItem,
    shard_key,
    shards_of,
    shown_code,
    site_tallies,
    site_tally,
)


class AccountExists(Exception):
    pass


class CodeTaken(Exception):
    pass


class CodeUnusable(Exception):
    """The referrer's code is no longer ACTIVE and theirs (disabled, erased) though the read said it was: the
    read may be stale or cached; the registration's own condition is not."""


@dataclass(frozen=True)
class CustomerView:
    customer: CustomerItem
    referral_count: int
    count_shards: int  # over how many items the count is spread (the referrer's list reads as many index keys)
    # Friends who signed up on other sites of the customer's group (cross-site referrals), by site key; the
    # customer's own site has the rest of referral_count.
    other_sites: dict[str, int] = field(default_factory=dict)

    def count_on(self, site: str) -> int:
        """Friends who signed up on `site`."""
        if site == self.customer.site:
            return self.referral_count - sum(self.other_sites.values())
        return self.other_sites.get(site, 0)


def load_customer_view(customer_id: str) -> CustomerView | None:
    """The account and its count: one request, or two when a viral count is spread over several shards."""
    first = CountItem.keys_for(customer_id, range(1))
    # Strongly consistent (twice the read units of an eventual read, 1 RCU an item here): a customer asks for
    # their own account right after `register`, and a count they just saw rise must not fall back.
    found = _batch_get_raw({CustomerItem: [{"customerId": customer_id}], CountItem: first}, consistent=True)
    if not found[CustomerItem]:
        return None
    customer = CustomerItem.from_raw_data(found[CustomerItem][0])
    counts = found[CountItem]
    shards = shards_of(customer)
    if shards > 1:
        more = CountItem.keys_for(customer_id, range(1, shards))
        counts = counts + _batch_get_raw({CountItem: more}, consistent=True)[CountItem]
    total, other_sites = 0, Counter[str]()
    for raw in counts:
        count, tallies = site_tallies(raw)
        total += count
        other_sites.update(tallies)
    return CustomerView(customer, total, shards, dict(other_sites))


# A registration reads the friend's code; one viral code read by every sign-up would pass an item's read
# ceiling, so each environment keeps a code for a few seconds, and at most CODE_CACHE_ENTRIES codes (the least
# recently used goes first). A code disabled or erased meanwhile is still refused: the registration's
# transaction checks it (create_account), so the cache only saves reads, it never decides.
CODE_CACHE_SECONDS = 5.0
CODE_CACHE_ENTRIES = 1_000
_code_cache: OrderedDict[str, tuple[float, CodeItem]] = OrderedDict()


def _remember_code(code: str, item: CodeItem) -> None:
    _code_cache[code] = (time.monotonic(), item)
    _code_cache.move_to_end(code)
    while len(_code_cache) > CODE_CACHE_ENTRIES:
        _code_cache.popitem(last=False)


def load_registration_context(customer_id: str, code: str | None) -> tuple[bool, CodeItem | None]:
    """Whether the account exists, and the code's item if a code is given, in one request."""
    keys: dict[type[Model], list[dict[str, Any]]] = {CustomerItem: [{"customerId": customer_id}]}
    cached = _code_cache.get(code) if code else None
    fresh = cached is not None and time.monotonic() - cached[0] < CODE_CACHE_SECONDS
    if code and not fresh:
        keys[CodeItem] = [{"code": code}]
    # Strongly consistent: a code (or an account) created a moment ago must be found, not refused as unknown.
    # One read unit an item instead of half; the cache above keeps a viral code's item under its ceiling.
    found = _batch_get(keys, consistent=True)
    if code and not fresh:
        code_items = found.get(CodeItem) or []
        if not code_items:
            return bool(found[CustomerItem]), None
        _remember_code(code, code_items[0])
    elif code:
        _code_cache.move_to_end(code)
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
            # Never fewer: an earlier code of the owner's (changeReferralCode) may say fewer shards than the account.
            transaction.update(
                CustomerItem(code.customer_id),
                actions=[CustomerItem.count_shards.set(shards)],
                condition=CustomerItem.customer_id.exists()
                & (CustomerItem.count_shards.does_not_exist() | (CustomerItem.count_shards < shards)),
            )
    except TransactWriteError as error:
        reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
        if "ConditionalCheckFailed" in reasons:
            return False  # another registration grew it first
        if classify(error) == RETRYABLE or any(reason in _RETRYABLE_REASONS for reason in reasons):
            return False  # contended or busy: the next contended registration tries again
        raise refusal(error, "DynamoDB", "TransactWriteItems") from error
    except PynamoDBException as error:
        raise _failure(error, "TransactWriteItems") from error
    return True


def catch_up_count_shards(code: CodeItem, shards_seen: int) -> int | None:
    """A code whose owner's account counts over more shards than the code says (the owner's earlier or later code
    grew it: changeReferralCode) takes the account's number, so it can spread its registrations as widely; the
    number it now says, or None when it did not change. One strongly consistent GetItem and one UpdateItem,
    only on the contended path."""
    owner = _get(CustomerItem, code.customer_id, consistent=True)
    wider = shards_of(owner) if owner is not None else 0
    if wider <= shards_seen:
        return None
    same = CodeItem.count_shards == shards_seen
    if shards_seen == 1:
        same = same | CodeItem.count_shards.does_not_exist()
    try:
        code.update(actions=[CodeItem.count_shards.set(wider)], condition=same)
    except PynamoDBException as error:
        if _refused_by_condition(error) or classify(error) == RETRYABLE:
            return None  # moved meanwhile, or busy: the next contended attempt reads it again
        raise refusal(error, "DynamoDB", "UpdateItem") from error
    return wider


def _grow_on_contention(code: str, shard: int, shards: int) -> tuple[int, int]:
    """The count's item was throttled or conflicting: the (shard, shards) the next attempt uses.

    The code is read again (one strongly consistent GetItem: other registrations may have grown it); when it
    still says the number of shards this attempt used, the count doubles (referrals.counting.grown) from that
    number, so racing registrations grow it once. The next attempt goes to another shard of the (possibly)
    wider count. Growing is best effort: when it is refused or contended, the next contended attempt tries
    again; the registration never fails for it."""
    forget_code(code)
    try:
        # Strongly consistent: an eventually consistent read may not show a growth made a moment ago.
        fresh = _get(CodeItem, code, consistent=True)
    except (Busy, Refused):
        fresh = None
    if fresh is None:  # erased meanwhile, or unreadable: the transaction's own condition decides
        return shard, shards
    stored = shards_of(fresh)
    if stored == shards and counting.grown(stored) > stored:
        try:
            if grow_count_shards(fresh, stored, counting.grown(stored)):
                stored = counting.grown(stored)
            else:  # grown by another registration, or the owner's account is already wider (an earlier code grew it)
                stored = catch_up_count_shards(fresh, stored) or stored
            fresh.count_shards = stored
        except (Busy, Refused):
            pass  # logged where AWS refused it; the next contended attempt tries again
    _remember_code(code, fresh)  # the next registrations here use the new number without reading it
    if stored <= 1 or shard >= stored:
        return counting.pick_shard(stored), stored
    other = counting.pick_shard(stored - 1)  # uniformly among the shards other than the contended one
    return (other + 1 if other >= shard else other), stored


def customer_exists(customer_id: str) -> bool:
    return load_registration_context(customer_id, None)[0]


# The referral's put in a registration's transaction (after the condition check): after the customer's and the code's.
_REFERRAL_PUT = 2


def create_account(
    customer: CustomerItem,
    code: CodeItem,
    referral: ReferralItem | None,
    count_shard: int,
    events: Sequence[Model] = (),
    velocity: VelocityCharge | None = None,
    count_shards: int = 1,
    referrer_site: str | None = None,
    figures: Sequence[FigureChange] = (),
) -> None:
    """Account, code, link, the referrer's count (and the outbox's events) in one transaction: all or none.

    `count_shard` is the shard (of `count_shards`, the number the referrer's code said) the count's increment
    goes to first. When an attempt finds the count's item throttled or conflicting, the count grows before the
    next attempt (_grow_on_contention), which lands on another shard. Raises AccountExists when the customer
    already has an account (a retry or a race lost), CodeTaken when the fresh code collided with an existing
    one, VelocityExceeded when the sign-up counter of `velocity` (with a referral only) was already at its
    limit, CodeUnusable when the referrer's code (`referral.code`) is no longer ACTIVE and the referrer's: a
    ConditionCheck in the same transaction, so a stale or cached read of the code can never link a sign-up to
    a disabled or erased code. `referrer_site` is the site of the referrer's account: a friend from another
    site of its group is tallied for their own site too (CountItem). `figures` are the programme's counters this
    sign-up adds to (storage.figures), in the same transaction: one more item.
    """
    shard = count_shard
    shards = max(1, count_shards)
    # pynamodb sends a transaction's puts before its updates, whatever the order they were added in: the
    # customer, code, referral and event puts come first, then the count's update, then the velocity counter's.
    count_index = 3 + len(events)
    velocity_index = count_index + 1

    lead = 1 if referral is not None else 0  # condition checks go first of all: the referrer's code's, with a referral

    def contended(reasons: list[str | None]) -> None:
        nonlocal shard, shards
        reasons = reasons[lead:]
        # The count's item, or the referral's put (its ByReferrerShard partition throttled): either way the next
        # attempt goes to another shard, which moves both.
        hot = [reasons[index] for index in (_REFERRAL_PUT, count_index) if index < len(reasons)]
        if referral is not None and any(reason in _RETRYABLE_REASONS for reason in hot):
            shard, shards = _grow_on_contention(referral.code, shard, shards)

    def write(transaction: TransactWrite) -> None:
        transaction.save(customer, condition=CustomerItem.customer_id.does_not_exist())
        transaction.save(code, condition=CodeItem.code.does_not_exist())
        if referral is not None:
            transaction.condition_check(
                CodeItem,
                referral.code,
                condition=(CodeItem.status == "ACTIVE") & (CodeItem.customer_id == referral.referrer_id),
            )
            # The referral's index entry goes where its count does (a grown count moves both to a new shard).
            referral.referrer_shard = shard_key(referral.referrer_id, shard)
            transaction.save(referral, condition=ReferralItem.pk.does_not_exist())
            tallies = [CountItem.count.add(1)]
            if referrer_site not in (None, referral.site):  # a friend from another site of the referrer's group
                tallies.append(site_tally(referral.site).add(1))
            transaction.update(CountItem.of(referral.referrer_id, shard), actions=tallies)
            if velocity is not None:
                _add_velocity(transaction, velocity)
        add_figures(transaction, figures)  # last of the updates: the positions read below stay
        for event in events:  # puts, so sent after the three puts above: the reasons' positions below stay
            transaction.save(event)

    reasons = _transact(write, contended if referral is not None else None)
    if reasons is None:
        return
    code_refused, reasons = reasons[:lead] == ["ConditionalCheckFailed"], reasons[lead:]
    if reasons[0] == "ConditionalCheckFailed":
        raise AccountExists()
    if code_refused:
        raise CodeUnusable()
    if reasons[1] == "ConditionalCheckFailed":
        raise CodeTaken()
    if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
        raise AccountExists()
    if velocity is not None and len(reasons) > velocity_index and reasons[velocity_index] == "ConditionalCheckFailed":
        raise VelocityExceeded()
    raise Busy()


def load_customer(customer_id: str) -> CustomerItem | None:
    """The caller's own account alone (no counts): one strongly consistent GetItem, so an account created a moment
    ago is found (an eventually consistent read may not see it yet)."""
    return _get(CustomerItem, customer_id, consistent=True)


def load_code(code: str) -> CodeItem | None:
    """A code's item: one eventually consistent GetItem; a miss is confirmed by a strongly consistent one, since a
    code created a moment ago may not have reached the replica that answered. Only unknown codes pay the second."""
    return _get(CodeItem, code) or _get(CodeItem, code, consistent=True)


def query_referrals(referrer_id: str, shards: int, offset: int, limit: int) -> list[ReferralItem]:
    """A referrer's referrals `offset` to `offset + limit`, newest first, from the ByReferrerShard index.

    One Query while the count has one shard. A spread count's shards are merged as they are read: each shard is
    read a page at a time, and only when the merge needs its next entry, so a call reads about `offset + limit`
    entries plus a page per shard, not `offset + limit` per shard. Ties on `createdAt` keep DynamoDB's order
    within a shard and shard order across shards (heapq.merge is stable), so pages at different offsets agree.
    """
    shards = max(1, shards)
    wanted = offset + limit
    page = wanted if shards == 1 else max(limit, -(-wanted // shards))
    streams = [
        ReferralItem.by_referrer.query(
            shard_key(referrer_id, shard), scan_index_forward=False, limit=wanted, page_size=page
        )
        for shard in range(shards)
    ]
    merged = heapq.merge(*streams, key=lambda referral: referral.created_at, reverse=True)
    # A shard's key is `<referrerId>#<shard>`, which another customer's id could in principle equal: only the
    # referrer's own referrals are theirs to see.
    mine = (referral for referral in merged if referral.referrer_id == referrer_id)
    return list(itertools.islice(mine, offset, wanted))


class CodeChange(Enum):
    DONE = "DONE"
    CODE_TAKEN = "CODE_TAKEN"  # the code's item exists: someone holds it, now or as an earlier code
    ACCOUNT_CHANGED = "ACCOUNT_CHANGED"  # the account changed its code, or was erased, since it was read


def change_code(customer: CustomerItem, new: CodeItem, changed_at: str) -> CodeChange:
    """Give `customer` the code `new` in one transaction: the code's item, put only where none exists (so of two
    customers taking one code at once exactly one gets it), and the account's current code, changed only from the
    one it was read with; the old code's key joins the account's former codes (it stays theirs, as an alias)."""
    old_key = codes.key(customer.code)
    # The new code starts with the account's count shards as read: only from that number
    same_shards = CustomerItem.count_shards == shards_of(customer)
    if shards_of(customer) == 1:
        same_shards = same_shards | CustomerItem.count_shards.does_not_exist()

    def write(transaction: TransactWrite) -> None:
        transaction.save(new, condition=CodeItem.code.does_not_exist())
        transaction.update(
            CustomerItem(customer.customer_id),
            actions=[
                CustomerItem.code.set(shown_code(new)),
                CustomerItem.code_changed_at.set(changed_at),
                CustomerItem.former_codes.add({old_key}),
            ],
            condition=CustomerItem.customer_id.exists() & (CustomerItem.code == customer.code) & same_shards,
        )

    reasons = _transact(write)
    if reasons is None:
        return CodeChange.DONE
    if reasons[0] == "ConditionalCheckFailed":
        return CodeChange.CODE_TAKEN
    return CodeChange.ACCOUNT_CHANGED
