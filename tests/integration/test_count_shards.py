"""A viral code's count spreads over more items when its item is contended, and stays exact."""

from __future__ import annotations

import pytest

from devserver import access
from referrals import storage
from tests.conftest import new_id
from tests.integration.helpers import customer, register

pytestmark = pytest.mark.usefixtures("aws_env")

# The count's place in the registration transaction: pynamodb sends condition checks (the friend's code) first,
# then puts (customer, code, referral, the ReferralRegistered event), then updates (the count, then the velocity
# counter).
COUNT_ITEM = 5


def test_contention_on_the_count_doubles_its_shards_and_the_count_stays_exact(faults, calls):
    referrer = new_id()
    code = register(referrer, "viral@example.com")["data"]["customer"]["referralCode"]
    # Given the count's item conflicts on a friend's first try
    faults.arm(2, "conflict", item=COUNT_ITEM)
    assert register(new_id(), "f0@example.com", code=code)["data"]["newCustomer"] is True
    faults.disarm()
    # Then the referrer's count is spread over two shards, on the code and on the account alike (grown once:
    # before the friend's next attempt, not again after it)
    assert storage.CodeItem.get(code).count_shards == 2
    assert storage.CustomerItem.get(referrer).count_shards == 2
    # And later friends land on either shard while the count stays exact
    for i in range(1, 12):
        register(new_id(), f"f{i}@example.com", code=code)
    shards = {item.shard: int(item.count) for item in storage.CountItem.query(referrer)}
    assert sum(shards.values()) == 12 and set(shards) <= {0, 1}
    calls.reset()
    assert customer(referrer, "viral@example.com")["data"]["referralCount"] == 12
    assert calls.count() == {"BatchGetItem": 2}  # the account with shard 0, then the other shards


def test_the_attempt_after_contention_grows_the_count_and_lands_on_another_shard(faults, calls):
    referrer = new_id()
    code = register(referrer, "viral@example.com")["data"]["customer"]["referralCode"]
    # Given the count's only item (shard 0) conflicts on a friend's first try
    faults.arm(2, "conflict", item=COUNT_ITEM)
    calls.reset()
    assert register(new_id(), "f0@example.com", code=code)["data"]["newCustomer"] is True
    faults.disarm()
    # Then before trying again the registration read the code (strongly consistent), doubled its shards in one
    # transaction, and wrote to the new shard: a GetItem and two transactions more than an uncontended sign-up
    assert calls.count() == {
        "BatchGetItem": 1,
        "GetItem": 1,
        "TransactWriteItems": 3,
        "PutEvents": 1,
        "BatchWriteItem": 1,
    }
    assert storage.CodeItem.get(code).count_shards == 2
    assert {item.shard: int(item.count) for item in storage.CountItem.query(referrer)} == {1: 1}
    assert customer(referrer, "viral@example.com")["data"]["referralCount"] == 1


def test_each_contended_attempt_grows_the_count_again(faults):
    referrer = new_id()
    code = register(referrer, "viral@example.com")["data"]["customer"]["referralCode"]
    # Given the count's item conflicts on a friend's first and second tries (calls 2 and 5: each contended
    # attempt is followed by the code's read and the growth's transaction)
    faults.arm([2, 5], "conflict", item=COUNT_ITEM)
    assert register(new_id(), "f0@example.com", code=code)["data"]["newCustomer"] is True
    faults.disarm()
    # Then the count doubled twice, on the code and on the account, and holds the one sign-up
    assert storage.CodeItem.get(code).count_shards == 4
    assert storage.CustomerItem.get(referrer).count_shards == 4
    assert sum(int(item.count) for item in storage.CountItem.query(referrer)) == 1
    assert customer(referrer, "viral@example.com")["data"]["referralCount"] == 1


def test_a_count_another_registration_grew_is_not_grown_again(faults):
    referrer = new_id()
    code = register(referrer, "viral@example.com")["data"]["customer"]["referralCode"]
    register(new_id(), "f0@example.com", code=code)  # this environment now keeps the code: 1 shard
    # Given another environment grew the count to 2 shards meanwhile
    assert storage.grow_count_shards(storage.CodeItem.get(code), 1, 2) is True
    # When a friend here (using the kept code: shard 0 of 1) finds the count's item contended
    faults.arm(2, "conflict", item=COUNT_ITEM)
    assert register(new_id(), "f1@example.com", code=code)["data"]["newCustomer"] is True
    faults.disarm()
    # Then the count is not grown from a number it no longer has; the retry took the other shard of the two
    assert storage.CodeItem.get(code).count_shards == 2
    assert {item.shard: int(item.count) for item in storage.CountItem.query(referrer)} == {0: 1, 1: 1}
    assert customer(referrer, "viral@example.com")["data"]["referralCount"] == 2


def test_an_unspread_count_is_read_in_one_request(calls):
    referrer = new_id()
    code = register(referrer, "r@example.com")["data"]["customer"]["referralCode"]
    register(new_id(), "f@example.com", code=code)
    calls.reset()
    assert customer(referrer, "r@example.com")["data"]["referralCount"] == 1
    assert calls.count() == {"BatchGetItem": 1}


def test_shards_grow_only_from_the_number_seen():
    referrer = new_id()
    code = register(referrer, "r@example.com")["data"]["customer"]["referralCode"]
    item = storage.CodeItem.get(code)
    assert storage.grow_count_shards(item, 1, 2) is True
    # A registration that saw 1 shard, racing the first grower, changes nothing
    assert storage.grow_count_shards(item, 1, 2) is False
    assert storage.CodeItem.get(code).count_shards == 2


def test_the_api_functions_role_lets_it_grow_the_shards(monkeypatch):
    """Growing runs in ApiFunction, under its role (enforced locally: devserver/access.py): one transaction
    updates count_shards on the code and on the account, which the role must allow on both tables."""
    monkeypatch.delenv("REFERRALS_LOCAL_IAM", raising=False)
    referrer = new_id()
    code = register(referrer, "r@example.com")["data"]["customer"]["referralCode"]
    with access.acting_as("ApiFunction"):
        assert storage.grow_count_shards(storage.CodeItem.get(code), 1, 2) is True
    assert storage.CodeItem.get(code).count_shards == 2
    assert storage.CustomerItem.get(referrer).count_shards == 2
