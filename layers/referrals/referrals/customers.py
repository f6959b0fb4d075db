"""Accounts and their referral codes: registration (with or without a friend's code) and the customer view."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from referrals import codes, counting, emails, formats, storage
from referrals.config import Settings, Site
from referrals.errors import Busy, UnknownSite
from referrals.sharing import share_urls

if TYPE_CHECKING:
    from referrals import abuse

MAX_NAME_LENGTH = 200
_CODE_ATTEMPTS = 5


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the verified token says: never taken from arguments."""

    customer_id: str
    email: str | None
    site_key: str | None
    # The request's source address as AppSync saw it (`identity.sourceIp`), never a client header: the
    # velocity check counts sign-ups per code and source (referrals.abuse).
    source_ip: str | None = None


@dataclass(frozen=True)
class ShareMethod:
    type: str
    url: str


@dataclass(frozen=True)
class ReferralCount:
    count: int
    site_key: str


@dataclass(frozen=True)
class CustomerProfile:
    customer_id: str
    referral_code: str
    referral_count: int
    referral_link: str
    social_referral_methods: list[ShareMethod]
    site: str
    # One per site of the customer's group, by site key (just their own site when it is in none).
    referral_counts: list[ReferralCount] = field(default_factory=list)
    # Not in the schema: the `referrals` field under this one reads it from its parent (it says where to look).
    count_shards: int = 1


@dataclass(frozen=True)
class FieldError:
    field_name: str
    validators: list[str]


@dataclass(frozen=True)
class Registration:
    customer: CustomerProfile | None = None
    error: str | None = None
    field_errors: list[FieldError] = field(default_factory=list)
    new_customer: bool = False


def site_of(settings: Settings, caller: Caller) -> Site:
    site = settings.site(caller.site_key)
    if site is None:
        raise UnknownSite(caller.site_key or "")
    return site


def _profile(
    settings: Settings, site: Site, customer_id: str, code: str, view: storage.CustomerView | None = None
) -> CustomerProfile:
    """The customer as the API shows them; without a view, as registration leaves them: no friends yet."""
    counts = [ReferralCount(view.count_on(s.key) if view else 0, s.key) for s in settings.group_of(site)]
    return CustomerProfile(
        customer_id=customer_id,
        referral_code=code,
        referral_count=sum(c.count for c in counts),
        referral_link=site.referral_link(code),
        social_referral_methods=[ShareMethod(t, u) for t, u in share_urls(site, code)],
        site=site.key,
        referral_counts=counts,
        count_shards=view.count_shards if view else 1,
    )


def get_customer(settings: Settings, caller: Caller) -> CustomerProfile | None:
    """The caller's own account on the caller's site, or None when there is none."""
    site = site_of(settings, caller)
    view = storage.load_customer_view(caller.customer_id)
    if view is None or view.customer.site != site.key:
        return None
    return _profile(settings, site, caller.customer_id, view.customer.code, view)


def masked_name(full_name: str) -> str:
    """First name and the initial of the last: what a referrer may see of a friend."""
    parts = full_name.split()
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]} {parts[-1][0]}."


def _same_mailbox(given: str, signed_in: str) -> bool:
    return not emails.invalid_reason(given) and emails.identity_key(given) == emails.identity_key(signed_in)


def _validate(full_name: str, email_argument: str | None, caller: Caller, raw_code: str | None) -> list[FieldError]:
    problems: list[FieldError] = []
    name = full_name.strip()
    if not name:
        problems.append(FieldError("fullName", ["REQUIRED"]))
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(FieldError("fullName", ["MAX_LENGTH"]))
    elif emails.has_control_characters(name):
        problems.append(FieldError("fullName", ["INVALID_CHARACTERS"]))
    if not caller.email or emails.invalid_reason(caller.email):
        problems.append(FieldError("email", ["REQUIRED_IN_TOKEN"]))
    elif email_argument and email_argument.strip() and not _same_mailbox(email_argument.strip(), caller.email):
        problems.append(FieldError("email", ["MUST_MATCH_SIGNED_IN_EMAIL"]))
    if raw_code is not None and len(raw_code) > codes.MAX_INPUT_LENGTH:
        problems.append(FieldError("referralCode", ["MAX_LENGTH"]))
    return problems


def _code_problem(settings: Settings, site: Site, code_item: storage.CodeItem | None) -> str | None:
    if code_item is None:
        return "REFERRAL_CODE_NOT_FOUND"
    if code_item.status != "ACTIVE":
        return "REFERRAL_CODE_DISABLED"
    if not settings.may_refer_across(code_item.site, site.key):
        return "REFERRAL_CODE_OTHER_SITE"
    if not site.enabled:
        return "REFERRAL_PROGRAMME_DISABLED"
    return None


def _link(
    site: Site,
    caller: Caller,
    code_item: storage.CodeItem,
    code: str,
    full_name: str,
    created_at: str,
    self_referral: bool,
    flag: abuse.Flag | None,
) -> tuple[storage.ReferralItem, list[storage.OutboxItem]]:
    """The referral a friend's sign-up writes, and the ReferralRegistered event (the friend's discount) that
    rides in the same transaction (outbox). A flagged one is held for review (docs/rewards.md, "Review")."""
    from referrals import rewards  # registration only: kept off the cold start of every other request

    pk, sk = storage.ReferralItem.key_for(caller.customer_id)
    referral = storage.ReferralItem(
        pk,
        sk,
        referee_id=caller.customer_id,
        referrer_id=code_item.customer_id,
        site=site.key,
        referrer_site=code_item.site if code_item.site != site.key else None,
        code=code,
        status="REGISTERED",
        eligible=not self_referral,
        ineligible_reason="SELF_REFERRAL" if self_referral else None,
        friend_name=masked_name(full_name.strip()),
        created_at=created_at,
        review=rewards.Review.FLAGGED.value if flag else None,
        review_reason=flag.value if flag else None,
    )
    return referral, rewards.prepare_registration(site, referral)


def register(
    settings: Settings,
    caller: Caller,
    full_name: str,
    referral_code: str | None = None,
    email: str | None = None,
    now: datetime | None = None,
) -> Registration:
    """Create the caller's account and code, linked to the referrer when a usable code is given.

    Requests: one transaction; plus one read when a code is given or the input is invalid
    (to say ACCOUNT_EXISTS first, as the contract orders). An eligible referral's ReferralRegistered event
    rides in that transaction and is published after it: one PutEvents and one BatchWriteItem.

    Abuse (referrals.abuse): a friend at a disposable email domain is linked but flagged DISPOSABLE_EMAIL. The
    sign-up counter of (code, source, window) rides in the same transaction, conditional on being under the
    site's limit; when it is not, the transaction is refused whole and written once more with the referral
    flagged VELOCITY and the counter added unconditionally: one transaction more, only past the limit.
    """
    # Registration only: kept off the cold start of every other request (docs/performance.md)
    from referrals import abuse, outbox

    site = site_of(settings, caller)
    moment = now or datetime.now(UTC)
    created_at = moment.isoformat(timespec="milliseconds")
    problems = _validate(full_name, email, caller, referral_code)
    code = codes.normalise(referral_code) if not problems else None
    if code is not None and not codes.is_well_formed(code):
        problems.append(FieldError("referralCode", ["REFERRAL_CODE_NOT_FOUND"]))
    code = codes.key(code) if code is not None else None  # look-alike characters matched as one
    if problems:
        if storage.customer_exists(caller.customer_id):
            return Registration(error="ACCOUNT_EXISTS")
        return Registration(error="INVALID_DATA", field_errors=problems)

    referral: storage.ReferralItem | None = None
    referrer_code: storage.CodeItem | None = None
    referrer_site: str | None = None
    count_shard, count_shards = 0, 1
    events: list[storage.OutboxItem] = []
    velocity: storage.VelocityCharge | None = None
    if code is not None:
        exists, code_item = storage.load_registration_context(caller.customer_id, code)
        if exists:
            return Registration(error="ACCOUNT_EXISTS")
        problem = _code_problem(settings, site, code_item)
        if problem:
            return Registration(error="INVALID_DATA", field_errors=[FieldError("referralCode", [problem])])
        assert code_item is not None and caller.email is not None
        self_referral = emails.identity_hash(caller.email) == code_item.owner_email_hash
        flag = abuse.Flag.DISPOSABLE_EMAIL if not self_referral and abuse.is_disposable(site, caller.email) else None
        referral, events = _link(site, caller, code_item, code, full_name, created_at, self_referral, flag)
        referrer_code = code_item
        referrer_site = code_item.site
        count_shards = storage.shards_of(code_item)
        count_shard = counting.pick_shard(count_shards)
        velocity = abuse.velocity_charge(site, code_item.customer_id, caller.source_ip, moment)
        if velocity is not None and (not referral.eligible or flag is not None):
            # Counted, never refused: a referral that cannot earn, or is held already, has nothing more to hold.
            velocity = replace(velocity, limit=None)

    assert caller.email is not None
    first_name = full_name.split()[0]
    email_hash = emails.identity_hash(caller.email)
    for _ in range(_CODE_ATTEMPTS):
        new_code = codes.new_code()
        if referrer_code is not None and new_code == referrer_code.code:
            continue  # taken (by the referrer), and one transaction may not name one item twice
        customer = storage.CustomerItem(
            caller.customer_id,
            site=site.key,
            code=new_code,
            email_hash=email_hash,
            first_name=first_name,
            referred_by=referral.referrer_id if referral else None,
            created_at=created_at,
        )
        code_item = storage.CodeItem(
            new_code,
            customer_id=caller.customer_id,
            site=site.key,
            status="ACTIVE",
            owner_email_hash=email_hash,
            owner_first_name=first_name,
            created_at=created_at,
        )
        try:
            storage.create_account(
                customer,
                code_item,
                referral,
                count_shard,
                events,
                velocity,
                count_shards,
                referrer_site,
                [storage.FigureChange(site.key, formats.day(moment), "signUpsWithCode")] if referral else (),
            )
        except storage.AccountExists:
            return Registration(error="ACCOUNT_EXISTS")
        except storage.CodeTaken:
            continue
        except storage.CodeUnusable:
            # Disabled or erased since the (cached or eventually consistent) read: the answer a fresh read gives.
            assert referral is not None
            storage.forget_code(referral.code)
            return Registration(
                error="INVALID_DATA", field_errors=[FieldError("referralCode", ["REFERRAL_CODE_DISABLED"])]
            )
        except storage.VelocityExceeded:
            # Past the limit for this code and source: written again, flagged, with the counter added regardless.
            assert referral is not None and referrer_code is not None and velocity is not None
            referral, events = _link(
                site, caller, referrer_code, referral.code, full_name, created_at, False, abuse.Flag.VELOCITY
            )
            velocity = replace(velocity, limit=None)
            continue
        outbox.publish(events)  # never raises: what it cannot publish, the reconciliation will
        return Registration(customer=_profile(settings, site, caller.customer_id, new_code), new_customer=True)
    raise Busy()


@dataclass(frozen=True)
class CodeChange:
    customer: CustomerProfile | None = None
    error: str | None = None
    field_errors: list[FieldError] = field(default_factory=list)


_CHANGE_ATTEMPTS = 3


def change_referral_code(settings: Settings, caller: Caller, raw_code: Any, now: datetime | None = None) -> CodeChange:
    """Give the caller the code they chose; their earlier codes stay theirs (aliases), so links already shared
    keep working and their sign-ups stay in the count.

    Requests: one strongly consistent BatchGetItem (the account, which code and when it last changed, and its
    count, for the answer), then one transaction (the code's item where none exists, the account's code changed
    only from the one read).
    """
    site = site_of(settings, caller)
    moment = now or datetime.now(UTC)
    code = codes.normalise(raw_code) if isinstance(raw_code, str) and len(raw_code) <= codes.MAX_INPUT_LENGTH else None
    for _ in range(_CHANGE_ATTEMPTS):
        view = storage.load_customer_view(caller.customer_id)
        if view is None or view.customer.site != site.key:
            return CodeChange(error="NO_ACCOUNT")
        account = view.customer
        problem = codes.chosen_code_problem(code) if code is not None else codes.CodeProblem.BADLY_FORMED
        if problem is not None:
            return CodeChange(error="INVALID_DATA", field_errors=[FieldError("code", [problem.value])])
        assert code is not None
        last_change = formats.parse_time(account.code_changed_at) if account.code_changed_at else None
        if last_change and moment < last_change + timedelta(days=site.code_change_days):
            return CodeChange(error="TOO_SOON")
        if len(account.former_codes or ()) >= codes.MAX_EARLIER_CODES:
            return CodeChange(error="TOO_MANY_CODES")
        created_at = formats.iso(moment)
        chosen = storage.CodeItem(
            codes.key(code),
            display=code,
            customer_id=account.customer_id,
            site=site.key,
            status="ACTIVE",
            owner_email_hash=account.email_hash,
            owner_first_name=account.first_name,
            created_at=created_at,
            count_shards=storage.shards_of(account),
        )
        outcome = storage.change_code(account, chosen, created_at)
        if outcome is storage.CodeChange.CODE_TAKEN:
            return CodeChange(error="CODE_TAKEN")
        if outcome is storage.CodeChange.DONE:
            return CodeChange(customer=_profile(settings, site, account.customer_id, code, view))
        # The account changed since it was read (another change, an erasure): read it again, decide again.
    raise Busy()
