"""The abuse rules without AWS: settings, disposable domains, what counts as one source, the counter's key."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from referrals import abuse, emails, rewards, storage
from referrals.config import DEFAULT_SITE, AbuseRules, parse_settings


def site_with(abuse_settings: dict):
    return parse_settings(json.dumps({"sites": {"default": {"abuse": abuse_settings}}})).site(None)


def test_defaults_are_five_sign_ups_an_hour_and_the_shipped_list():
    assert DEFAULT_SITE.abuse == AbuseRules(velocity_limit=5, velocity_window_minutes=60, disposable_domains=())
    assert parse_settings(None).site(None).abuse == DEFAULT_SITE.abuse


def test_site_settings_are_read_and_domains_normalised():
    rules = site_with(
        {
            "velocityLimit": 3,
            "velocityWindowMinutes": 15,
            "disposableDomains": [" Throwaway.Example ", "bücher.example"],
        }
    ).abuse
    assert (rules.velocity_limit, rules.velocity_window_minutes) == (3, 15)
    assert rules.disposable_domains == ("throwaway.example", "xn--bcher-kva.example")


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ({"velocityLimit": -1}, "velocityLimit"),
        ({"velocityLimit": 1001}, "velocityLimit"),
        ({"velocityWindowMinutes": 0}, "velocityWindowMinutes"),
        ({"velocityWindowMinutes": 7 * 24 * 60 + 1}, "velocityWindowMinutes"),
        ({"disposableDomains": "mailinator.com"}, "disposableDomains"),
        ({"disposableDomains": [42]}, "disposableDomains"),
        ({"disposableDomains": ["localhost"]}, "not a domain name"),
        ({"disposableDomains": ["bad domain.com"]}, "not a domain name"),
        ({"disposableDomains": ["-x.com"]}, "not a domain name"),
        ({"disposableDomains": ["x.\ncom"]}, "not a domain name"),
        ({"velocityLimits": 5}, "unknown setting 'velocityLimits'"),
    ],
)
def test_bad_settings_stop_the_start(given, complaint):
    with pytest.raises(ValueError, match=complaint):
        site_with(given)


def test_the_abuse_settings_must_be_an_object():
    with pytest.raises(ValueError, match="abuse must be an object"):
        parse_settings(json.dumps({"sites": {"default": {"abuse": [5]}}}))


def test_the_maintained_list_loads_once_with_valid_domains():
    # The disposable-email-domains package (issue 14, part 4), not a hand-kept file
    shipped = abuse.shipped_domains()
    assert len(shipped) >= 5_000 and {"mailinator.com", "yopmail.com", "guerrillamail.com"} <= shipped
    # Lower case, and ASCII as addresses are compared (a few are emoji domains, which IDNA 2008 refuses outright:
    # an address there is INVALID_DOMAIN before it could be flagged)
    refused = [d for d in shipped if emails.invalid_reason(f"x@{d}") is not None]
    assert all(domain == domain.lower() and domain.isascii() for domain in shipped)
    assert len(refused) < 50 and all(emails.invalid_reason(f"x@{d}") == "INVALID_DOMAIN" for d in refused), refused
    assert abuse.shipped_domains() is shipped  # read once


@pytest.mark.parametrize(
    ("address", "disposable"),
    [
        ("a@mailinator.com", True),
        ("a@MAILINATOR.COM", True),
        ("a@inbox.mailinator.com", True),
        ("a@notyopmail.com", False),  # a listed name inside another domain is not it
        ("a@mailinator.com.example.org", False),
        ("a@example.com", False),
        ("a@gmail.com", False),
        ("a@throwaway.example", True),
        ("a@x.throwaway.example", True),
    ],
)
def test_a_domain_or_any_subdomain_of_a_listed_one_is_disposable(address, disposable):
    site = site_with({"disposableDomains": ["throwaway.example"]})
    assert abuse.is_disposable(site, address) is disposable


def test_other_sites_do_not_share_a_sites_own_domains():
    settings = parse_settings(
        json.dumps(
            {
                "sites": {
                    "default": {"abuse": {"disposableDomains": ["throwaway.example"]}},
                    "outlet": {"domain": "outlet.example.com", "sender": "f@outlet.example.com"},
                }
            }
        )
    )
    assert abuse.is_disposable(settings.sites["default"], "a@throwaway.example") is True
    assert abuse.is_disposable(settings.sites["outlet"], "a@throwaway.example") is False


@pytest.mark.parametrize(
    ("ip", "source"),
    [
        ("203.0.113.10", "203.0.113.10"),
        (" 203.0.113.10 ", "203.0.113.10"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.10", "203.0.113.10"),
        ("not an address", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_one_source_is_an_ipv4_address_or_an_ipv6_64(ip, source):
    assert abuse.source_of(ip) == source


def test_the_counter_key_holds_a_digest_of_the_source_per_code_and_window():
    site = DEFAULT_SITE
    at = datetime(2031, 1, 1, 10, 30, tzinfo=UTC)
    charge = abuse.velocity_charge(site, "ABCD2345", "203.0.113.10", at)
    assert charge is not None and charge.limit == 5
    assert charge.key.startswith("VELOCITY#ABCD2345#") and "203.0.113" not in charge.key
    window = int(at.timestamp()) // 3600
    assert charge.key.split("#")[2] == str(window)
    assert charge.expires_at == (window + 2) * 3600  # one window past its own end
    # The same hour and source share it; another source, code or hour does not
    assert abuse.velocity_charge(site, "ABCD2345", "203.0.113.10", at.replace(minute=59)) == charge
    others = [
        abuse.velocity_charge(site, "ABCD2345", "203.0.113.11", at),
        abuse.velocity_charge(site, "ABCD2346", "203.0.113.10", at),
        abuse.velocity_charge(site, "ABCD2345", "203.0.113.10", at.replace(hour=11)),
    ]
    assert all(o is not None and o.key != charge.key for o in others)
    assert abuse.velocity_charge(site_with({"velocityLimit": 0}), "ABCD2345", "203.0.113.10", at) is None


def _referral(**attributes) -> storage.ReferralItem:
    return storage.ReferralItem(
        "REFEREE#f",
        "REFERRAL",
        referee_id="f",
        referrer_id="r",
        site="default",
        code="ABCD2345",
        friend_name="Fran F.",
        created_at="2031-01-01T00:00:00.000+00:00",
        **attributes,
    )


@pytest.mark.parametrize(
    ("status", "review", "stored_reason", "shown"),
    [
        ("REGISTERED", "FLAGGED", None, ("REGISTERED", "VELOCITY")),
        ("PENDING", "FLAGGED", None, ("PENDING", "VELOCITY")),
        ("REVERSED", "FLAGGED", "ORDER_CANCELLED", ("REVERSED", "VELOCITY")),
        ("HELD", "FLAGGED", "VELOCITY", ("HELD", "VELOCITY")),
        ("EXPIRED", "FLAGGED", "NO_QUALIFYING_ORDER", ("EXPIRED", "NO_QUALIFYING_ORDER")),
        ("REJECTED", "REJECTED", "VELOCITY", ("REJECTED", "VELOCITY")),
        ("PENDING", "RELEASED", None, ("PENDING", None)),
        ("EARNED", "RELEASED", None, ("EARNED", None)),
        ("PENDING", None, None, ("PENDING", None)),
    ],
)
def test_the_customer_sees_the_flag_while_it_waits(status, review, stored_reason, shown):
    item = _referral(status=status, reason=stored_reason, review=review, review_reason="VELOCITY" if review else None)
    seen = rewards.summary(item)
    assert (seen.status, seen.reason) == shown


def test_the_documented_settings_are_the_defaults():
    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    example = re.search(r"```json\n(.*?)```", text, re.S)
    assert example is not None
    assert parse_settings(example.group(1)).site(None).abuse == DEFAULT_SITE.abuse
