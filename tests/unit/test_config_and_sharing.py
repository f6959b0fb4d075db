"""Typed site settings and share URLs."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest

from referrals.config import parse_settings
from referrals.sharing import share_urls


def test_defaults_are_the_contracts():
    settings = parse_settings(None)
    site = settings.site(None)
    assert site is not None and site.key == "default" and site.domain == "shop.example.com"
    assert site.sender == "friends@shop.example.com" and site.currency == "GBP"
    assert site.rewards.referrer_credit == Decimal("5.00") and site.rewards.minimum_order == Decimal("30.00")
    assert site.rewards.referee_discount_percent == 20 and site.rewards.return_window_days == 14
    assert site.invites.max_addresses_per_call == 10 and site.invites.bucket_capacity == 20
    assert site.invites.refill_per_day == 20


def test_sites_overlay_their_own_settings():
    settings = parse_settings(
        json.dumps(
            {
                "defaultSite": "uk",
                "sites": {
                    "uk": {
                        "domain": "uk.example.com",
                        "sender": "hi@uk.example.com",
                        "rewards": {"minimumOrder": "40"},
                    },
                    "de": {"domain": "de.example.com", "sender": "hi@de.example.com", "currency": "EUR"},
                },
            }
        )
    )
    assert settings.site(None).key == "uk"
    assert settings.site("uk").rewards.minimum_order == Decimal("40")
    assert settings.site("de").currency == "EUR"
    assert settings.site("fr") is None


@pytest.mark.parametrize(
    "document",
    [
        {"sites": {"x": {"domain": "x.com"}}},
        {"sites": {"default": {"colour": "red"}}},
        {"sites": {"default": {"shareMethods": ["EMAIL", "MYSPACE"]}}},
        {"defaultSite": "nowhere"},
    ],
)
def test_bad_settings_are_refused_at_start(document):
    with pytest.raises(ValueError):
        parse_settings(json.dumps(document))


def test_share_urls_carry_the_link_encoded():
    site = parse_settings(None).site(None)
    urls = dict(share_urls(site, "ABCD2345"))
    link = "https://shop.example.com/referrals.list?applyCode=ABCD2345"
    assert next(iter(urls)) == "EMAIL"
    assert set(urls) == {"EMAIL", "FACEBOOK", "MESSENGER", "SMS", "TWITTER", "VK", "WEIBO", "WHATSAPP"}
    assert parse_qs(urlparse(urls["FACEBOOK"]).query)["u"] == [link]
    assert link in parse_qs(urlparse(urls["WHATSAPP"]).query)["text"][0]
    assert link in parse_qs(urlparse(urls["EMAIL"]).query)["body"][0]
    for url in urls.values():
        assert " " not in url and "\n" not in url


def test_email_is_offered_even_when_the_site_lists_only_others():
    site = parse_settings(json.dumps({"sites": {"default": {"shareMethods": ["SMS"]}}})).site(None)
    assert [method for method, _ in share_urls(site, "ABCD2345")] == ["EMAIL", "SMS"]
