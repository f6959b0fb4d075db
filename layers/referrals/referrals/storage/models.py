"""Every item we store, as pynamodb models, with the key schemes that address them.

Table names and the region come from referrals.config when the first request needs them (`_Setting`), so these
classes can be imported, and items built, without a stack's environment.
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import quote

from pynamodb.attributes import Attribute, BooleanAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.constants import NUMBER
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from referrals.config import CLIENT_TIMEOUTS
from referrals.storage.client import settings


class _Setting:
    """A Meta attribute read from the storage settings each time pynamodb asks for it (it does when it makes a
    request): with a table's variable missing, the first request raises SettingsError, never a made-up name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: Any) -> str:
        return getattr(settings(), self.name)


class _Meta:
    # pynamodb makes each model's botocore client with these (standard retry mode, 1 + max_retry_attempts attempts
    # in all): the numbers are referrals.config.CLIENT_TIMEOUTS'.
    connect_timeout_seconds = CLIENT_TIMEOUTS.connect_seconds
    read_timeout_seconds = CLIENT_TIMEOUTS.read_seconds
    max_retry_attempts = CLIENT_TIMEOUTS.total_max_attempts - 1
    # pynamodb looks for a region when it makes a model class (and puts its own default where there is none),
    # then reads it when it first connects. This placeholder answers the first look; the setting replaces it once
    # the classes exist (at the end of this module), so importing the models reads no settings.
    region: Any = None


# ---------- CustomersTable, CodesTable, ReferralCountsTable: accounts, codes and counts ----------


class CustomerItem(Model):
    """One account per customer id (the Cognito `sub`), tied to the site it registered on."""

    class Meta(_Meta):
        table_name = _Setting("customers_table")

    customer_id = UnicodeAttribute(hash_key=True, attr_name="customerId")
    site = UnicodeAttribute()
    code = UnicodeAttribute()
    email_hash = UnicodeAttribute(attr_name="emailHash")
    first_name = UnicodeAttribute(attr_name="firstName")
    referred_by = UnicodeAttribute(null=True, attr_name="referredBy")
    created_at = UnicodeAttribute(attr_name="createdAt")
    # Over how many CountItem shards this customer's count is spread (referrals.counting): readers sum them.
    count_shards = NumberAttribute(default=1, attr_name="countShards")
    # Codes chosen (changeReferralCode): when the last change was made, and the keys of the earlier codes, which
    # stay theirs (aliases) and which erasure disables with the current one.
    code_changed_at = UnicodeAttribute(null=True, attr_name="codeChangedAt")
    former_codes = UnicodeSetAttribute(null=True, attr_name="formerCodes")


class CodeItem(Model):
    """A referral code and what a registration needs to know of its owner, so one read suffices."""

    class Meta(_Meta):
        table_name = _Setting("codes_table")

    code = UnicodeAttribute(hash_key=True)  # referrals.codes.key of the code
    # The code as its owner chose it, when its key differs (look-alike characters): what the API shows.
    display = UnicodeAttribute(null=True)
    customer_id = UnicodeAttribute(attr_name="customerId")
    site = UnicodeAttribute()
    status = UnicodeAttribute(default="ACTIVE")
    owner_email_hash = UnicodeAttribute(attr_name="ownerEmailHash")
    owner_first_name = UnicodeAttribute(attr_name="ownerFirstName")
    created_at = UnicodeAttribute(attr_name="createdAt")
    # The owner's count shards, here too: registrations read this item anyway and pick a shard from it.
    count_shards = NumberAttribute(default=1, attr_name="countShards")


def shown_code(item: CodeItem) -> str:
    """A code as its owner sees it (and as the landing page shows it)."""
    return item.display or item.code


def shards_of(item: CustomerItem | CodeItem) -> int:
    """Over how many count shards the count of an account (or of its code's owner) is spread: 1 unless it went
    viral (referrals.counting)."""
    return int(item.count_shards or 1)


def shard_key(referrer_id: str, shard: int) -> str:
    """A referrer's key for one count shard: shard 0 under the referrer's id, every other shard under a value of its
    own. A count shard's item and the referrals it counted (the ByReferrerShard index) are both keyed on it, so each
    shard has partitions of its own: no partition of one referrer takes more than one shard's writes."""
    return referrer_id if shard == 0 else f"{referrer_id}#{shard}"


class CountItem(Model):
    """Friends signed up with a referrer's code; one item per shard, summed on read.

    `count` counts every friend. A friend who signed up on another site of the referrer's group (cross-site
    referrals) is also tallied under that site's own attribute (site_tally), in the same update: the referrer's
    own site's figure is `count` less the other sites' tallies, so items written before sites were grouped read
    right, and a count needs no more items, reads or writes for being spread over sites.
    """

    class Meta(_Meta):
        table_name = _Setting("counts_table")

    # shard_key(referrer, shard); the table's key attribute keeps its first name, `referrerId`.
    key = UnicodeAttribute(hash_key=True, attr_name="referrerId")
    shard = NumberAttribute(range_key=True)
    count = NumberAttribute(default=0)

    @classmethod
    def of(cls, referrer_id: str, shard: int, **attributes: Any) -> CountItem:
        return cls(shard_key(referrer_id, shard), shard, **attributes)

    @staticmethod
    def keys_for(referrer_id: str, shards: range) -> list[dict[str, Any]]:
        return [{"referrerId": shard_key(referrer_id, shard), "shard": shard} for shard in shards]


SITE_TALLY_PREFIX = "count@"


def site_tally(site: str) -> NumberAttribute:
    """The attribute of a count item that tallies friends from `site` (not the referrer's own): site keys are
    letters, digits, `_` and `-` (referrals.config), so the name is always a plain, top-level one that ADD takes."""
    attribute = NumberAttribute(attr_name=SITE_TALLY_PREFIX + site)
    attribute.attr_path = [attribute.attr_name]
    return attribute


def site_tallies(raw: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """A raw count item's `count` and its other sites' tallies."""
    tallies = {
        name.removeprefix(SITE_TALLY_PREFIX): int(value["N"])
        for name, value in raw.items()
        if name.startswith(SITE_TALLY_PREFIX)
    }
    return int(raw.get("count", {"N": "0"})["N"]), tallies


# ---------- ReferralsTable: the referee's ledger, the outbox, monthly caps, the due index (docs/rewards.md) ----------
# Under `REFEREE#<id>`: the referral (`REFERRAL`), one immutable item per order fact (`ORDER#<order>...`) and
# the outbox (`EVENT#<idempotency key>`), so one Query reads a friend's whole story. Under `REFERRER#<id>`: one
# counter per month for the cap. Items the reconciliation must visit carry `dueShard`/`dueAt` (sparse index).

BY_REFERRER_INDEX = "ByReferrerShard"
DUE_INDEX = "Due"
# The due index's partition key is spread over this many values so its writes never pile on one partition;
# the reconciliation queries each value. Raising it later is safe; lowering it strands items.
DUE_SHARDS = 64


def due_shard(referee_id: str) -> int:
    return zlib.crc32(referee_id.encode()) % DUE_SHARDS


def referee_pk(referee_id: str) -> str:
    return f"REFEREE#{referee_id}"


class ByReferrerIndex(GlobalSecondaryIndex["ReferralItem"]):
    """A referrer's referrals, newest first, one partition key value per count shard (shard_key): a viral code's
    sign-ups spread over the index as its count spreads over items. A reader queries each of the referrer's
    `countShards` values and merges."""

    class Meta:
        index_name = BY_REFERRER_INDEX
        projection = AllProjection()

    referrer_shard = UnicodeAttribute(hash_key=True, attr_name="referrerShard")
    created_at = UnicodeAttribute(range_key=True, attr_name="createdAt")


class ReferralItem(Model):
    """The link between a friend (referee) and their referrer, and its reward lifecycle."""

    class Meta(_Meta):
        table_name = _Setting("referrals_table")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    referee_id = UnicodeAttribute(attr_name="refereeId")
    referrer_id = UnicodeAttribute(attr_name="referrerId")
    site = UnicodeAttribute()  # the friend's: its rules decide which orders qualify
    # The referrer's site when it is another of the friend's site's group (cross-site referrals): the referrer's
    # credit follows its rules and currency. Unset: the friend's site.
    referrer_site = UnicodeAttribute(null=True, attr_name="referrerSite")
    code = UnicodeAttribute()
    status = UnicodeAttribute()
    eligible = BooleanAttribute(default=True)
    ineligible_reason = UnicodeAttribute(null=True, attr_name="ineligibleReason")
    friend_name = UnicodeAttribute(attr_name="friendName")
    created_at = UnicodeAttribute(attr_name="createdAt")
    # shard_key(referrer, the count shard its registration added 1 to): the ByReferrerShard index's key.
    referrer_shard = UnicodeAttribute(null=True, attr_name="referrerShard")
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
    # The programme's figures (storage.figures): the UTC day of the friend's first qualifying order, and of the fall
    # of their last qualifying order while nothing replaced it. Each moves with the facts, and the figures with it.
    qualified_on = UnicodeAttribute(null=True, attr_name="qualifiedOn")
    reversed_on = UnicodeAttribute(null=True, attr_name="reversedOn")
    review = UnicodeAttribute(null=True)
    review_reason = UnicodeAttribute(null=True, attr_name="reviewReason")
    reviewed_at = UnicodeAttribute(null=True, attr_name="reviewedAt")
    reviewed_by = UnicodeAttribute(null=True, attr_name="reviewedBy")

    @staticmethod
    def key_for(referee_id: str) -> tuple[str, str]:
        return referee_pk(referee_id), "REFERRAL"


class DecimalAttribute(Attribute[Decimal]):
    """Money as a DynamoDB number, read back as Decimal (pynamodb's NumberAttribute would give a float)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class OrderFactItem(Model):
    """What one order event said about a friend's order. Written once, with a condition on its key (order id,
    kind, refund key), never changed: a redelivered event finds its fact already there."""

    class Meta(_Meta):
        table_name = _Setting("referrals_table")

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
        table_name = _Setting("referrals_table")

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
        table_name = _Setting("referrals_table")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    earned = NumberAttribute(default=0)
    expires_at = NumberAttribute(null=True, attr_name="expiresAt")

    @staticmethod
    def key_for(referrer_id: str, month: str) -> tuple[str, str]:
        return f"REFERRER#{referrer_id}", f"CAP#{month}"


# ---------- ProgrammeFiguresTable: the programme's figures per site and UTC day (docs/programme.md) ----------
# Under `FIGURES#<site>#<shard>`, one item a day (`DAY#<yyyy-mm-dd>`) holding a counter per figure. A change adds to
# a shard picked at random, so one site's sign-ups (a registration's transaction adds to one) spread over
# FIGURE_SHARDS partition keys: 32 shards take 16,000 transactional sign-ups a second before any item or
# partition reaches its ceiling. A report reads every shard (one Query each) and sums.

FIGURE_SHARDS = 32
FIGURES = (
    "invitesSent",
    "offerLookups",
    "signUpsWithCode",
    "firstQualifyingOrders",
    "rewardsEarned",
    "rewardsReversed",
)


def figures_pk(site: str, shard: int) -> str:
    return f"FIGURES#{site}#{shard}"


def figures_sk(day: str) -> str:
    return f"DAY#{day}"


class FiguresItem(Model):
    """One shard of one site's figures for one UTC day; every counter only ever has numbers added to it."""

    class Meta(_Meta):
        table_name = _Setting("figures_table")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    invites_sent = NumberAttribute(null=True, attr_name="invitesSent")
    offer_lookups = NumberAttribute(null=True, attr_name="offerLookups")
    sign_ups_with_code = NumberAttribute(null=True, attr_name="signUpsWithCode")
    first_qualifying_orders = NumberAttribute(null=True, attr_name="firstQualifyingOrders")
    rewards_earned = NumberAttribute(null=True, attr_name="rewardsEarned")
    rewards_reversed = NumberAttribute(null=True, attr_name="rewardsReversed")

    @staticmethod
    @cache
    def counter(figure: str) -> NumberAttribute:
        """The attribute of a figure named as the API names it (FIGURES)."""
        return {attribute.attr_name: attribute for attribute in FiguresItem.get_attributes().values()}[figure]


# ---------- InvitesTable: rate-limit buckets, per-address cool-down and suppression, sign-up velocity ----------
# One table, one partition key: `BUCKET#<scope>#<subject>` items hold a GCRA theoretical arrival time,
# `ADDRESS#<site>#<address hash>` items hold who invited an address until when, or that it is suppressed,
# `VELOCITY#<referrer>#<window>#<digest>` items count sign-ups with one referrer's codes from one source
# (docs/rewards.md, "Review").

BY_INVITER_INDEX = "ByInviter"


def customer_bucket_key(customer_id: str) -> str:
    """The key of a customer's REFERRAL_EMAIL bucket: referrals.invites spends it, erasure deletes it."""
    return f"CUSTOMER#{customer_id}"


class BucketItem(Model):
    """A token bucket as GCRA stores it: one number (ms since the epoch), removed by TTL once the bucket is full."""

    class Meta(_Meta):
        table_name = _Setting("invites_table")

    pk = UnicodeAttribute(hash_key=True)
    tat = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True, attr_name="expiresAt")
    # A random id per take_tokens call, written with the TAT: a write sent again after its answer was lost is
    # refused, and the refusal's item (tat and writer) tells storage the write was its own.
    writer = UnicodeAttribute(null=True)
    # The id of the last give-back (return_tokens): the same give-back sent again is refused, never refunded twice.
    refund = UnicodeAttribute(null=True)

    @staticmethod
    def key_for(bucket: str) -> str:
        """The item of bucket `bucket` (`<scope>#<subject>`, such as customer_bucket_key's)."""
        return f"BUCKET#{bucket}"


class AddressItem(Model):
    """A friend's address (hashed) on one site: invited until when (TTL), or suppressed for good."""

    class Meta(_Meta):
        table_name = _Setting("invites_table")

    pk = UnicodeAttribute(hash_key=True)
    invited_until = NumberAttribute(null=True, attr_name="invitedUntil")
    invited_at = NumberAttribute(null=True, attr_name="invitedAt")
    invited_by = UnicodeAttribute(null=True, attr_name="invitedBy")
    suppressed_at = UnicodeAttribute(null=True, attr_name="suppressedAt")
    suppressed_reason = UnicodeAttribute(null=True, attr_name="suppressedReason")
    expires_at = NumberAttribute(null=True, attr_name="expiresAt")
    # A random id per claim_address call, written with the claim: the claim sent again after its answer was lost
    # is refused, and the refusal's item tells the claim was ours. Cool-down data: leaves with the claim.
    claim_id = UnicodeAttribute(null=True, attr_name="claimId")

    @staticmethod
    def key_for(site: str, address_hash: str) -> str:
        return f"ADDRESS#{site}#{address_hash}"


class VelocityItem(Model):
    """Sign-ups with one code from one source in one fixed window; its TTL removes it a window after its end."""

    class Meta(_Meta):
        table_name = _Setting("invites_table")

    pk = UnicodeAttribute(hash_key=True)
    n = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True, attr_name="expiresAt")


# ---------- Erasure's views (docs/privacy.md): the attributes erasure changes, beside the full models ----------


class _ErasableCode(Model):
    """The attributes of a code item that erasure changes: a second view of CodesTable beside CodeItem, so the
    owner's name and email hash can be removed while the code stays (disabled) and is never issued again."""

    class Meta(_Meta):
        table_name = _Setting("codes_table")

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
        table_name = _Setting("referrals_table")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    friend_name = UnicodeAttribute(null=True, attr_name="friendName")
    erased_at = UnicodeAttribute(null=True, attr_name="erasedAt")


_Meta.region = _Setting("region")
