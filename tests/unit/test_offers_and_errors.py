"""Pure parts of the lookup and the invite errors: no AWS."""

from __future__ import annotations

import pytest

from referrals import offers
from referrals.errors import InvitationsNotSent


@pytest.mark.parametrize(
    ("source_ips", "forwarded", "hops", "expected"),
    [
        (["192.0.2.1"], "1.1.1.1, 2.2.2.2", 1, "192.0.2.1"),
        (None, "203.0.113.10, 130.176.1.1", 1, "203.0.113.10"),
        (None, "6.6.6.6, 203.0.113.10, 130.176.1.1", 1, "203.0.113.10"),
        (None, "203.0.113.10", 1, "203.0.113.10"),
        (None, "6.6.6.6, 203.0.113.10", 0, "203.0.113.10"),
        (None, None, 1, None),
    ],
)
def test_client_ip_reads_forwarded_for_from_the_right(source_ips, forwarded, hops, expected):
    assert offers.client_ip(source_ips, forwarded, hops) == expected


def test_invitations_not_sent_names_each_address():
    error = InvitationsNotSent([("a@example.org", "SUPPRESSED"), ("b\r\n@x.org", "SEND_FAILED")])
    assert (
        error.message == 'Some invitations were not sent: "a@example.org" (SUPPRESSED), "b\\r\\n@x.org" (SEND_FAILED)'
    )
