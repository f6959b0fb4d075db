"""The caller's address (referrals.sources), the one helper the velocity check and the public lookup count by:
AppSync's `identity.sourceIp` ends with the address of the connection AppSync accepted, and only that end (past
the proxies we trust) is believed; what a client writes into X-Forwarded-For comes before it."""

from __future__ import annotations

import pytest

from devserver.appsync import source_ips
from referrals.config import load_settings, parse_settings
from referrals.sources import source_address

CLIENT = "203.0.113.10"  # the caller, as the last trusted hop saw it
EDGE = "130.176.1.1"  # a CloudFront address (AppSync's own edge, or ours in front of AppSync)


@pytest.mark.parametrize(
    ("source_ips", "hops", "expected"),
    [
        ([CLIENT], 0, CLIENT),  # no X-Forwarded-For: the connection's address alone
        (["198.51.100.7", CLIENT], 0, CLIENT),  # the header's address is the client's own writing
        (["198.51.100.7", "198.51.100.8", CLIENT], 0, CLIENT),
        (["198.51.100.7", CLIENT, EDGE], 1, CLIENT),  # behind CloudFront: it appended the viewer, connected itself
        ([CLIENT, EDGE], 1, CLIENT),
        ([CLIENT], 1, CLIENT),  # reached around the proxy: never further left than the list goes
        (["198.51.100.7", "198.51.100.8", CLIENT, EDGE, "10.0.0.1"], 2, CLIENT),
    ],
)
def test_with_an_identity_the_address_appsync_appended_is_trusted(source_ips, hops, expected):
    assert source_address(source_ips, "anything, at all", hops) == expected


def test_rotating_the_header_never_changes_the_address():
    chosen = {source_address([forged, CLIENT], None, 0) for forged in ("1.1.1.1", "2.2.2.2", "::1", "", "junk")}
    assert chosen == {CLIENT}


@pytest.mark.parametrize(
    ("forwarded", "hops", "expected"),
    [
        (f"{CLIENT}, {EDGE}", 0, CLIENT),  # AppSync's edge appended the viewer, then itself
        (f"6.6.6.6, {CLIENT}, {EDGE}", 0, CLIENT),
        (f"6.6.6.6, 7.7.7.7, {CLIENT}, {EDGE}", 0, CLIENT),
        (f"6.6.6.6, {CLIENT}, 130.176.9.9, {EDGE}", 1, CLIENT),  # our CloudFront in front, then AppSync's edge
        (CLIENT, 0, CLIENT),
        ("", 0, None),
        (None, 0, None),
    ],
)
def test_with_the_api_key_the_header_is_read_from_the_right(forwarded, hops, expected):
    # API-key callers have no identity: AppSync hands the function a null one
    assert source_address(None, forwarded, hops) == expected


def test_malformed_lists_give_no_address():
    assert source_address([None], None, 0) is None
    assert source_address([], None, 0) is None
    assert source_address("203.0.113.10", None, 0) is None  # sourceIp is always a list


def test_the_stand_in_builds_source_ip_as_appsync_does():
    # The header's addresses, in order, then the connection's (split as AppSync splits them)
    assert source_ips([], "127.0.0.1") == ["127.0.0.1"]
    assert source_ips(["198.51.100.7"], "127.0.0.1") == ["198.51.100.7", "127.0.0.1"]
    assert source_ips(["198.51.100.7, 192.0.2.1", " 192.0.2.2 "], "127.0.0.1") == [
        "198.51.100.7",
        "192.0.2.1",
        "192.0.2.2",
        "127.0.0.1",
    ]


def test_trusted_proxy_hops_comes_from_the_environment_only(monkeypatch):
    monkeypatch.delenv("TRUSTED_PROXY_HOPS", raising=False)
    assert load_settings().trusted_proxy_hops == 0
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    assert load_settings().trusted_proxy_hops == 1
    for wrong in ("-1", "one", "1.5", "6", "²"):
        monkeypatch.setenv("TRUSTED_PROXY_HOPS", wrong)
        with pytest.raises(ValueError, match="TRUSTED_PROXY_HOPS"):
            load_settings()
    # SitesConfig's old key counted AppSync's own edge too: it stops the start rather than mean something else
    with pytest.raises(ValueError, match="TrustedProxyHops"):
        parse_settings('{"trustedProxyHops": 1}')
