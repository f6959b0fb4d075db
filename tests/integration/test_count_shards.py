"""A viral code's count spreads over more items when its item is contended, and stays exact."""

from __future__ import annotations

import pytest

from devserver import access
from referrals import storage
from tests.conftest import new_id
from tests.integration.helpers import count_by_shard, customer, register, spread_referrer
from tests.integration.test_referrals_query import referrals

pytestmark = pytest.mark.usefixtures("aws_env")

# The count's place in the registration transaction: pynamodb sends condition checks (the friend's code) first,
# then puts (customer, code, referral, the ReferralRegistered event), then updates (the count, then the velocity
# counter).
COUNT_ITEM = 5
REFERRAL_PUT = 3  # after the code's condition check, the customer's and the code's puts


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
    shards = count_by_shard(referrer)
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
    assert count_by_shard(referrer) == {1: 1}
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
    assert sum(count_by_shard(referrer).values()) == 1
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
    assert count_by_shard(referrer) == {0: 1, 1: 1}
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


def _raw_count_keys(referrer: str) -> set[str]:
    """The partition key values the counts table holds for a referrer (its test data only: a scan is fine here)."""
    table = storage.CountItem.Meta.table_name
    items = storage._client().scan(TableName=table)["Items"]
    return {item["referrerId"]["S"] for item in items if item["referrerId"]["S"].split("#")[0] == referrer}


def _friend_whose_first_try_conflicted(faults, item: int) -> tuple[str, str, str]:
    """(referrer, code, friend): a friend signed up with a new referrer's code, whose first try found the
    transaction's `item` conflicting."""
    referrer = new_id()
    code = register(referrer, "viral@example.com")["data"]["customer"]["referralCode"]
    faults.arm(2, "conflict", item=item)
    friend = new_id()
    assert register(friend, "f0@example.com", code=code)["data"]["newCustomer"] is True
    faults.disarm()
    return referrer, code, friend


def test_each_count_shard_and_its_referrals_have_a_partition_key_of_their_own(faults):
    # Given a friend whose first try found the count's only item contended (the count grows to two shards)
    referrer, _, friend = _friend_whose_first_try_conflicted(faults, COUNT_ITEM)
    # Then shard 1 is stored under `<referrer>#1`, not under the referrer's id with shard 0's partition
    assert _raw_count_keys(referrer) == {f"{referrer}#1"}
    # And the friend's referral is indexed under the same shard's key (ByReferrerShard), not the referrer's id
    referral = storage.ReferralItem.get(*storage.ReferralItem.key_for(friend))
    assert referral.referrer_shard == f"{referrer}#1"
    assert [r.referee_id for r in storage.ReferralItem.by_referrer.query(f"{referrer}#1")] == [friend]
    assert list(storage.ReferralItem.by_referrer.query(referrer)) == []


def test_a_spread_referrers_list_merges_every_shard_newest_first(calls):
    referrer, _ = spread_referrer(12)
    parent = customer(referrer, "viral@example.com")["data"]
    assert parent["referralCount"] == 12
    # When the referrer reads all of them, then pages of five
    calls.reset()
    whole = referrals(referrer, 0, 50, source=parent)["data"]
    # Then one Query per shard (the parent said how many), every friend once, newest first
    assert calls.count() == {"Query": 4}
    stamps = [item["createdAt"] for item in whole["items"]]
    assert len(stamps) == 12 and stamps == sorted(stamps, reverse=True) and whole["hasMore"] is False
    pages = [referrals(referrer, offset, 5, source=parent)["data"]["items"] for offset in (0, 5, 10)]
    assert [item["createdAt"] for page in pages for item in page] == stamps
    # And without a parent the account and shards are read first (two BatchGetItem: the count is spread)
    calls.reset()
    assert referrals(referrer, 0, 50)["data"]["total"] == 12
    assert calls.count() == {"BatchGetItem": 2, "Query": 4}


def test_a_throttled_index_partition_moves_the_next_attempt_to_another_shard(faults):
    # Given a friend whose first try finds the referral's put refused for its index partition (ByReferrerShard
    # throttling shows on the put: the count's own item was fine)
    referrer, code, friend = _friend_whose_first_try_conflicted(faults, REFERRAL_PUT)
    # Then the next attempt went to another shard: both the index entry and the count moved there
    assert storage.CodeItem.get(code).count_shards == 2
    assert storage.ReferralItem.get(*storage.ReferralItem.key_for(friend)).referrer_shard == f"{referrer}#1"
    assert count_by_shard(referrer) == {1: 1}


def test_a_customer_whose_id_is_another_shards_key_is_not_listed_there():
    # Given referrer X spread over two shards, and a customer whose id is X's shard-1 key, with a friend of their own
    referrer, _ = spread_referrer(6, shards=2)
    lookalike = f"{referrer}#1"
    their_code = register(lookalike, "look@example.com", "Lou Alike")["data"]["customer"]["referralCode"]
    stranger = new_id("stranger")
    assert register(stranger, "s@example.com", "Stan Stranger", code=their_code)["data"]["newCustomer"] is True
    # When X reads their list and their export, Then only X's six friends are in them, never the stranger
    page = referrals(referrer, 0, 50)["data"]
    assert page["total"] == 6 and len(page["items"]) == 6
    assert "Stan S." not in {item["friendName"] for item in page["items"]}
    from tests.integration.test_privacy import export

    exported = export(referrer)["data"]["referralsMade"]
    assert len(exported["items"]) == 6 and "Stan S." not in {item["friendName"] for item in exported["items"]}
