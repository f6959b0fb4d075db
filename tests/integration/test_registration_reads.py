"""Registration's reads as DynamoDB serves them: the code it reads may be cached or a moment old, so the
transaction itself checks the code; the customer's own account is read strongly right after `register`."""

from __future__ import annotations

import pytest

from devserver import consistency
from referrals import storage
from referrals.storage import accounts
from tests.conftest import new_id
from tests.integration.helpers import customer, register

pytestmark = pytest.mark.usefixtures("aws_env")


def _referral(friend: str) -> storage.ReferralItem | None:
    try:
        return storage.ReferralItem.get(*storage.ReferralItem.key_for(friend), consistent_read=True)
    except storage.ReferralItem.DoesNotExist:
        return None


@pytest.mark.parametrize("change", ["disabled", "erased"])
def test_a_code_disabled_while_cached_is_refused_by_the_registration_itself(change, calls):
    referrer = new_id()
    code = register(referrer, f"{referrer}@example.com")["data"]["customer"]["referralCode"]
    first = new_id()
    assert register(first, f"{first}@example.com", code=code)["data"]["newCustomer"] is True  # the code is cached
    # When the code is disabled (or its owner erased: the code is disabled and no longer theirs) a moment later
    actions = [storage.CodeItem.status.set("DISABLED")]
    if change == "erased":
        actions.append(storage.CodeItem.customer_id.set("ERASED"))
    storage.CodeItem(code).update(actions=actions)
    calls.reset()
    friend = new_id()
    answer = register(friend, f"{friend}@example.com", code=code)["data"]
    # Then the friend is refused as a fresh read would refuse them, with no request added, and nothing written
    assert answer["error"] == "INVALID_DATA"
    assert answer["fieldErrors"] == [{"fieldName": "referralCode", "validators": ["REFERRAL_CODE_DISABLED"]}]
    assert calls.count("dynamodb") == {"BatchGetItem": 1, "TransactWriteItems": 1}
    assert _referral(friend) is None
    assert customer(friend, f"{friend}@example.com") == {"data": None}


def test_the_code_cache_keeps_at_most_its_bound_dropping_the_least_recently_used(monkeypatch):
    monkeypatch.setattr(accounts, "CODE_CACHE_ENTRIES", 2)
    monkeypatch.setattr(accounts, "_code_cache", type(accounts._code_cache)())
    codes = [register(r, f"{r}@example.com")["data"]["customer"]["referralCode"] for r in (new_id(), new_id())]
    third = register(new_id(), "c@example.com")["data"]["customer"]["referralCode"]
    reader = new_id()
    storage.load_registration_context(reader, codes[0])
    storage.load_registration_context(reader, codes[1])
    storage.load_registration_context(reader, codes[0])  # used again: now the most recent
    storage.load_registration_context(reader, third)
    assert list(accounts._code_cache) == [codes[0], third]
    assert accounts.CODE_CACHE_ENTRIES == 2 and len(accounts._code_cache) == 2


def test_the_customer_reads_their_account_right_after_registering(stale_reads):
    # Every eventually consistent read answered by the lagging replica: only a strong read sees the account
    consistency.enable(consistency.Staleness(window=5.0, lagging=1.0, seed="own-account", tick=0.01))
    for _ in range(5):
        me = new_id()
        code = register(me, f"{me}@example.com")["data"]["customer"]["referralCode"]
        assert customer(me, f"{me}@example.com")["data"]["referralCode"] == code
