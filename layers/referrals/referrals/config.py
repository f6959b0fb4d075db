"""Typed settings, parsed once at cold start. Logic receives these objects and never reads os.environ.

This is the one module that reads the environment. A setting the deployment must give (a table's name, the
region) has no fallback: without it a function stops at cold start with one line naming the variable.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

SHARE_METHODS = ("EMAIL", "FACEBOOK", "MESSENGER", "SMS", "TWITTER", "VK", "WEIBO", "WHATSAPP")


@dataclass(frozen=True)
class RewardRules:
    referrer_credit: Decimal = Decimal("5.00")
    minimum_order: Decimal = Decimal("30.00")
    referee_discount_percent: int = 20
    return_window_days: int = 14
    qualifying_days: int = 365
    monthly_cap: int = 50


@dataclass(frozen=True)
class InviteRules:
    max_addresses_per_call: int = 10
    bucket_capacity: int = 20
    refill_per_day: int = 20
    cooldown_days: int = 30
    site_sends_per_second: int = 14
    # SES tolerates short bursts above its per-second rate; the site bucket holds this many seconds of sends.
    site_burst_seconds: int = 10
    template: str = "ReferralInvite"


@dataclass(frozen=True)
class LookupRules:
    """The public code lookup's limit per source IP (enumerating codes must stay hopeless)."""

    capacity: int = 20
    refill_per_hour: int = 60


@dataclass(frozen=True)
class AbuseRules:
    """When a referral is held for review instead of rewarded at once (docs/rewards.md, "Review")."""

    # Sign-ups with one code from one source (IPv4 address, IPv6 /64) per window that are taken as they come;
    # the ones after are flagged VELOCITY. 0 turns the check off.
    velocity_limit: int = 5
    velocity_window_minutes: int = 60
    # Added to the maintained list (the disposable-email-domains package): a friend with such an address is flagged.
    disposable_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Site:
    key: str
    domain: str
    name: str
    sender: str
    currency: str = "GBP"
    enabled: bool = True
    locale: str = "en_GB"
    offer_text: str = "20% off your first order"
    share_methods: tuple[str, ...] = SHARE_METHODS
    rewards: RewardRules = field(default_factory=RewardRules)
    invites: InviteRules = field(default_factory=InviteRules)
    abuse: AbuseRules = field(default_factory=AbuseRules)
    # Sites of one brand in several countries share a group; a friend on one may use a code of another when
    # both have cross-site referrals on (docs/configuration.md, "Groups").
    group: str | None = None
    cross_site_referrals: bool = False
    # How often a customer may choose a new referral code (changeReferralCode); the old one stays an alias.
    code_change_days: int = 30

    def referral_link(self, code: str) -> str:
        return f"https://{self.domain}/referrals.list?applyCode={code}"


@dataclass(frozen=True)
class Settings:
    sites: dict[str, Site]
    default_site: str = "default"
    code_lookups: LookupRules = field(default_factory=LookupRules)
    # Proxies of ours in front of AppSync that each append to X-Forwarded-For (CloudFront: 1); 0 when clients
    # reach AppSync directly. From `TRUSTED_PROXY_HOPS` (the stack's TrustedProxyHops), never from SitesConfig.
    trusted_proxy_hops: int = 0

    def site(self, key: str | None) -> Site | None:
        return self.sites.get(key or self.default_site)

    def group_of(self, site: Site) -> list[Site]:
        """The sites of `site`'s group, ordered by key: just `site` when it is in none."""
        if site.group is None:
            return [site]
        return sorted((s for s in self.sites.values() if s.group == site.group), key=lambda s: s.key)

    def may_refer_across(self, referrer_site: str, friend_site: str) -> bool:
        """Whether a friend on `friend_site` may sign up with a code of `referrer_site`."""
        if referrer_site == friend_site:
            return True
        a, b = self.sites.get(referrer_site), self.sites.get(friend_site)
        return (
            a is not None
            and b is not None
            and a.group is not None
            and a.group == b.group
            and a.cross_site_referrals
            and b.cross_site_referrals
        )


DEFAULT_SITE = Site(
    key="default",
    domain="shop.example.com",
    name="Example Shop",
    sender="friends@shop.example.com",
)


def _camel_to_snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _typed(cls: type, raw: dict[str, Any], base: Any) -> Any:
    """Overlay camelCase JSON keys onto a dataclass instance, coercing each to the field's type."""
    known = {f.name: f for f in fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        name = _camel_to_snake(key)
        if name not in known:
            raise ValueError(f"unknown setting '{key}' for {cls.__name__}")
        current = getattr(base, name)
        if isinstance(current, Decimal):
            value = Decimal(str(value))
        elif isinstance(current, bool):
            value = bool(value)
        elif isinstance(current, int):
            value = int(value)
        elif isinstance(current, tuple):
            value = tuple(value)
        changes[name] = value
    return replace(base, **changes)


# A week: longer windows would keep counters (and the digests of addresses in their keys) longer than needed.
MAX_VELOCITY_WINDOW_MINUTES = 7 * 24 * 60
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _abuse_rules(key: str, raw: Any) -> AbuseRules:
    if not isinstance(raw, dict):
        raise ValueError(f"site '{key}': abuse must be an object")
    domains = raw.get("disposableDomains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise ValueError(f"site '{key}': abuse.disposableDomains must be a list of domain names")
    rules = _typed(AbuseRules, raw, AbuseRules())
    if not 0 <= rules.velocity_limit <= 1000:
        raise ValueError(f"site '{key}': abuse.velocityLimit must be 0 (off) to 1000")
    if not 1 <= rules.velocity_window_minutes <= MAX_VELOCITY_WINDOW_MINUTES:
        raise ValueError(f"site '{key}': abuse.velocityWindowMinutes must be 1 to {MAX_VELOCITY_WINDOW_MINUTES}")
    return replace(rules, disposable_domains=tuple(_domain(key, d) for d in domains))


def _domain(key: str, given: str) -> str:
    """A domain as it is compared: lower case, IDNA-encoded (as referrals.emails.canonical writes addresses)."""
    import idna  # IDNA 2008 (UTS #46), as referrals.emails writes addresses; only sites listing domains need it

    try:
        domain = idna.encode(given.strip().lower(), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        domain = ""
    labels = domain.split(".")
    if len(labels) < 2 or not all(_HOST_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(f"site '{key}': abuse.disposableDomains holds {given!r}, which is not a domain name")
    return domain


def _site(key: str, raw: dict[str, Any]) -> Site:
    raw = dict(raw)
    rewards = _typed(RewardRules, raw.pop("rewards", {}), RewardRules())
    invites = _typed(InviteRules, raw.pop("invites", {}), InviteRules())
    abuse = _abuse_rules(key, raw.pop("abuse", {}))
    base = DEFAULT_SITE if key == DEFAULT_SITE.key else Site(key=key, domain="", name=key, sender="")
    site = _typed(Site, raw, replace(base, rewards=rewards, invites=invites, abuse=abuse))
    site = replace(site, key=key)
    if not site.domain or not site.sender:
        raise ValueError(f"site '{key}' needs a domain and a sender")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key):
        raise ValueError(f"site key '{key}' may hold only letters, digits, '_' and '-' (it tags mail)")
    if any(ord(c) < 32 or ord(c) == 127 for c in site.sender + site.name + site.domain):
        raise ValueError(f"site '{key}' has control characters in its sender, name or domain")
    rules = site.invites
    if min(rules.refill_per_day, rules.site_sends_per_second, rules.site_burst_seconds, rules.cooldown_days) < 1:
        raise ValueError(f"site '{key}': invite rates and the cool-down must be positive")
    site_burst = rules.site_sends_per_second * rules.site_burst_seconds
    if not 1 <= rules.max_addresses_per_call <= min(rules.bucket_capacity, site_burst):
        raise ValueError(f"site '{key}': invites.maxAddressesPerCall must fit both the customer and the site bucket")
    rewards = site.rewards
    if (
        min(rewards.minimum_order, rewards.referrer_credit) < 0
        or min(rewards.return_window_days, rewards.monthly_cap) < 0
    ):
        raise ValueError(f"site '{key}': rewards amounts, window and cap must not be negative")
    if rewards.qualifying_days < 1 or not 0 <= rewards.referee_discount_percent <= 100:
        raise ValueError(f"site '{key}': rewards.qualifyingDays must be positive and the discount 0 to 100 percent")
    if site.group is not None and not (
        isinstance(site.group, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", site.group)
    ):
        raise ValueError(f"site '{key}': group may hold only letters, digits, '_' and '-'")
    if not 0 <= site.code_change_days <= 3660:
        raise ValueError(f"site '{key}': codeChangeDays must be 0 to 3660")
    unknown = set(site.share_methods) - set(SHARE_METHODS)
    if unknown:
        raise ValueError(f"site '{key}' names unknown share methods {sorted(unknown)}")
    return site


def parse_settings(document: str | None) -> Settings:
    """Settings from a JSON document; `{}` or nothing gives the contract's defaults."""
    raw: dict[str, Any] = json.loads(document) if document and document.strip() else {}
    if "trustedProxyHops" in raw:  # it counted AppSync's own edge too: read with today's meaning it would be wrong
        raise ValueError("trustedProxyHops moved out of SitesConfig: set the TrustedProxyHops stack parameter")
    sites_raw: dict[str, Any] = raw.get("sites") or {DEFAULT_SITE.key: {}}
    sites = {key: _site(key, value or {}) for key, value in sites_raw.items()}
    default_site = raw.get("defaultSite", DEFAULT_SITE.key if DEFAULT_SITE.key in sites else next(iter(sites)))
    if default_site not in sites:
        raise ValueError(f"defaultSite '{default_site}' is not among the sites")
    return Settings(
        sites=sites,
        default_site=default_site,
        code_lookups=_typed(LookupRules, raw.get("codeLookups") or {}, LookupRules()),
    )


def load_settings() -> Settings:
    """`SITES_CONFIG` holds the JSON document; `TRUSTED_PROXY_HOPS` the proxies in front of AppSync."""
    return replace(parse_settings(os.environ.get("SITES_CONFIG")), trusted_proxy_hops=load_trusted_proxy_hops())


MAX_TRUSTED_PROXY_HOPS = 5


def load_trusted_proxy_hops() -> int:
    """`TRUSTED_PROXY_HOPS`: how many proxies of ours stand in front of AppSync, each appending the address it
    was reached from to X-Forwarded-For (CloudFront: 1). Unset or empty: 0. Anything else stops the start."""
    value = os.environ.get("TRUSTED_PROXY_HOPS", "").strip()
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_TRUSTED_PROXY_HOPS:
        raise ValueError(f"TRUSTED_PROXY_HOPS is {value!r}: give a whole number from 0 to {MAX_TRUSTED_PROXY_HOPS}")
    return int(value)


@dataclass(frozen=True)
class MailSettings:
    """Where invites go out: SES template names are `template_prefix` + a site's `invites.template`."""

    template_prefix: str = ""
    configuration_set: str | None = None

    def template_name(self, site: Site) -> str:
        return self.template_prefix + site.invites.template


def load_mail_settings() -> MailSettings:
    """`MAIL_TEMPLATE_PREFIX` and `INVITES_CONFIGURATION_SET` come from template.yaml."""
    return MailSettings(
        template_prefix=os.environ.get("MAIL_TEMPLATE_PREFIX", ""),
        configuration_set=os.environ.get("INVITES_CONFIGURATION_SET") or None,
    )


@dataclass(frozen=True)
class EventSettings:
    """Where reward events go (the service's own bus) and where unusable order and customer events are kept."""

    bus_name: str
    order_events_dlq_url: str | None = None
    customer_events_dlq_url: str | None = None
    mail_events_dlq_url: str | None = None


_BUS_NAME = (re.compile(r"[A-Za-z0-9._/-]{1,256}"), "an EventBridge bus name")


def load_event_settings() -> EventSettings:
    """`EVENT_BUS_NAME` (required: a made-up bus would strand every event in the outbox), `ORDER_EVENTS_DLQ_URL`
    and `CUSTOMER_EVENTS_DLQ_URL` come from template.yaml."""
    return EventSettings(
        bus_name=_required("EVENT_BUS_NAME", "the service's event bus, set by template.yaml", _BUS_NAME),
        order_events_dlq_url=os.environ.get("ORDER_EVENTS_DLQ_URL") or None,
        customer_events_dlq_url=os.environ.get("CUSTOMER_EVENTS_DLQ_URL") or None,
        mail_events_dlq_url=os.environ.get("MAIL_EVENTS_DLQ_URL") or None,
    )


class SettingsError(ValueError):
    """A setting the deployment must give is missing or malformed. Raised at cold start; its message is the one
    line that says which variable and what it should hold."""


@dataclass(frozen=True)
class StorageSettings:
    """Where the data is: the region and the name of each table. All required, none has a fallback."""

    region: str
    customers_table: str
    codes_table: str
    counts_table: str
    referrals_table: str
    invites_table: str
    figures_table: str


# field: (variable, what it holds). template.yaml sets every one for every function (Globals).
_TABLE_VARIABLES = {
    "customers_table": ("CUSTOMERS_TABLE", "the name of the customers table"),
    "codes_table": ("CODES_TABLE", "the name of the referral codes table"),
    "counts_table": ("COUNTS_TABLE", "the name of the referral counts table"),
    "referrals_table": ("REFERRALS_TABLE", "the name of the referrals table"),
    "invites_table": ("INVITES_TABLE", "the name of the invites table"),
    "figures_table": ("FIGURES_TABLE", "the name of the programme figures table"),
}
# What a well-formed value looks like, and how the error says so.
_TABLE_NAME = (re.compile(r"[A-Za-z0-9_.-]{3,255}"), "a DynamoDB table name")
# Partition prefixes are not all two letters (`eusc-de-east-1`, the European Sovereign Cloud).
_REGION_NAME = (re.compile(r"[a-z]{2,}(-[a-z0-9]+)+-[0-9]+"), "an AWS region such as eu-west-1")


def _required(variable: str, meaning: str, form: tuple[re.Pattern[str], str]) -> str:
    value = os.environ.get(variable, "")
    if not value.strip():
        raise SettingsError(f"{variable} is not set ({meaning})")
    pattern, described = form
    if not pattern.fullmatch(value):
        raise SettingsError(f"{variable} is {value!r}, which is not {described} ({meaning})")
    return value


def load_storage_settings() -> StorageSettings:
    """The tables template.yaml names (`CUSTOMERS_TABLE`, ...) and the region Lambda sets (`AWS_REGION`, or
    `AWS_DEFAULT_REGION` where only that is set). A missing, empty or malformed one raises SettingsError."""
    region = "AWS_REGION"
    if not os.environ.get(region) and os.environ.get("AWS_DEFAULT_REGION"):
        region = "AWS_DEFAULT_REGION"
    return StorageSettings(
        region=_required(region, "the function's region, set by Lambda", _REGION_NAME),
        **{
            name: _required(variable, f"{meaning}, set by template.yaml", _TABLE_NAME)
            for name, (variable, meaning) in _TABLE_VARIABLES.items()
        },
    )


def load_trace_subsegments() -> bool:
    """Whether Powertools' Tracer records subsegments: `POWERTOOLS_TRACE_DISABLED` (set from the template's
    `TraceSubsegments`) turns them off."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() not in {"1", "true"}


@dataclass(frozen=True)
class ClientTimeouts:
    """How long one AWS SDK call may take: every client the layer builds (pynamodb's, EventBridge, SQS; SES with
    SES_TIMEOUTS below) is made with these, so a call that hangs ends well inside the function's Timeout and the
    give-back paths still run (docs/faults.md, "Timeouts"). template.yaml's AWS_RETRY_MODE / AWS_MAX_ATTEMPTS say
    the same (a unit test holds them together) for any client made without this config.

    Worst case of one call: total_max_attempts * (connect + read) plus standard mode's backoff before each retry
    (at most 1 s, then 2 s): 3 * (0.5 + 1.0) + 3 = 7.5 s, which leaves 2.5 s of a 10 s Timeout for the give-back.
    DynamoDB answers in milliseconds and SES in well under a second: an answer 1 s late is taken as lost, and the
    request is retried (which is why every write must be safe to apply twice: docs/faults.md, "lost answers"; SES
    sends are not, and are never retried after a lost answer: SES_TIMEOUTS).
    """

    connect_seconds: float = 0.5
    read_seconds: float = 1.0
    total_max_attempts: int = 3  # the first attempt and two retries
    retry_mode: str = "standard"

    def botocore_config(self) -> Any:
        """The botocore Config for a client made with these (imported here so importing config costs nothing)."""
        from botocore.config import Config

        return Config(
            connect_timeout=self.connect_seconds,
            read_timeout=self.read_seconds,
            retries={"mode": self.retry_mode, "total_max_attempts": self.total_max_attempts},
        )

    @property
    def worst_case_seconds(self) -> float:
        """The longest one call can take: every attempt times out, each retry waits its longest backoff."""
        backoff = sum(min(2**i, 20) for i in range(self.total_max_attempts - 1))
        return self.total_max_attempts * (self.connect_seconds + self.read_seconds) + backoff


CLIENT_TIMEOUTS = ClientTimeouts()
# SES sends are not idempotent: its client makes one attempt (botocore would resend a send whose answer was lost,
# mailing twice), and referrals.mailer asks again only when nothing can have been sent. A bulk send of 50 takes
# longer than a DynamoDB call, and a late answer costs an UNCONFIRMED friend, so its read waits 3 s: 3.5 s at worst.
SES_TIMEOUTS = ClientTimeouts(read_seconds=3.0, total_max_attempts=1)
# Cognito gives a trigger 5 s: two attempts (2 * 1.5 s and a 1 s backoff, 4 s at worst) fit where three do not.
TRIGGER_TIMEOUTS = ClientTimeouts(total_max_attempts=2)


_APPSYNC_ID = (re.compile(r"[A-Za-z0-9-]{1,128}"), "an AppSync id")


@dataclass(frozen=True)
class PublicKeySettings:
    """The public API key the keeper extends: its API's id and its own (template.yaml)."""

    api_id: str
    key_id: str


def load_public_key_settings() -> PublicKeySettings:
    return PublicKeySettings(
        api_id=_required("API_ID", "the GraphQL API's id, set by template.yaml", _APPSYNC_ID),
        key_id=_required("API_KEY_ID", "the public API key's id, set by template.yaml", _APPSYNC_ID),
    )


@dataclass(frozen=True)
class HttpDoorSettings:
    """The HTTP API door's server route (functions/http_api): which function resolves each field, and AppSync's
    limits."""

    region: str
    # "Type.field" -> the ARN of the function its AppSync resolver's data source invokes
    resolver_functions: dict[str, str]
    engine: HttpEngineSettings


_FIELD_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*\.[_A-Za-z][_0-9A-Za-z]*")
_LIMIT = (re.compile(r"[0-9]{1,4}"), "a whole number")


@dataclass(frozen=True)
class HttpEngineSettings:
    """AppSync's limits, which the HTTP door keeps too: QueryDepthLimit, ResolverCountLimit, introspection."""

    query_depth_limit: int
    resolver_count_limit: int
    introspection: bool

    @property
    def limits(self) -> dict[str, int]:
        """As graphql_engine.GraphQLEngine takes them, by AppSync's names."""
        return {"QueryDepthLimit": self.query_depth_limit, "ResolverCountLimit": self.resolver_count_limit}


def load_http_engine_settings() -> HttpEngineSettings:
    """QUERY_DEPTH_LIMIT, RESOLVER_COUNT_LIMIT and INTROSPECTION (template.yaml: GraphQLApi's, kept equal by
    tests/unit/test_http_door_template.py). A missing or malformed limit raises SettingsError."""
    return HttpEngineSettings(
        query_depth_limit=int(
            _required("QUERY_DEPTH_LIMIT", "AppSync's QueryDepthLimit, set by template.yaml", _LIMIT)
        ),
        resolver_count_limit=int(
            _required("RESOLVER_COUNT_LIMIT", "AppSync's ResolverCountLimit, set by template.yaml", _LIMIT)
        ),
        introspection=os.environ.get("INTROSPECTION", "DISABLED").strip().upper() == "ENABLED",
    )


def load_http_door_settings() -> HttpDoorSettings:
    """RESOLVER_FUNCTIONS (JSON: field -> function ARN), QUERY_DEPTH_LIMIT, RESOLVER_COUNT_LIMIT, INTROSPECTION
    (template.yaml, HttpApiFunction), and the region. A missing or malformed one raises SettingsError."""
    meaning = (
        'each field\'s resolver function as JSON, {"Query.customer": "arn:...:function:..."}, set by template.yaml'
    )
    raw = _required("RESOLVER_FUNCTIONS", meaning, (re.compile(r"\s*\{.*\}\s*", re.DOTALL), "a JSON object"))
    try:
        functions = json.loads(raw)
    except ValueError as error:
        raise SettingsError(f"RESOLVER_FUNCTIONS is not valid JSON ({meaning})") from error
    if not functions or not all(
        _FIELD_NAME.fullmatch(str(k)) and isinstance(v, str) and v.startswith("arn:") for k, v in functions.items()
    ):
        raise SettingsError(f"RESOLVER_FUNCTIONS holds something other than field names and ARNs ({meaning})")
    region = "AWS_REGION" if os.environ.get("AWS_REGION") else "AWS_DEFAULT_REGION"
    return HttpDoorSettings(
        region=_required(region, "the function's region, set by Lambda", _REGION_NAME),
        resolver_functions=functions,
        engine=load_http_engine_settings(),
    )
