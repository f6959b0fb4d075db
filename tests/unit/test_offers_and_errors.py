"""The invite errors: no AWS (the lookup's source address: tests/unit/test_sources.py)."""

from __future__ import annotations

from referrals.errors import InvitationsNotSent


def test_invitations_not_sent_names_each_address():
    error = InvitationsNotSent([("a@example.org", "SUPPRESSED"), ("b\r\n@x.org", "SEND_FAILED")])
    assert (
        error.message == 'Some invitations were not sent: "a@example.org" (SUPPRESSED), "b\\r\\n@x.org" (SEND_FAILED)'
    )
