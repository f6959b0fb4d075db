"""Erasure and export (docs/privacy.md) through PrivacyFunction's handler, on moto, with their requests counted."""

from __future__ import annotations

import base64
import copy
import json
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from devserver.stack import REGION
from referrals import emails, privacy, storage
from tests.conftest import load_event, new_id
from tests.integration.helpers import call_api, count_by_shard, customer, function, register, spread_referrer
from tests.integration.rewards_helpers import (
    Bus,
    deliver,
    placed,
    reconcile,
    referral,
    referred_friend,
    registered_at,
)

pytestmark = pytest.mark.usefixtures("aws_env")

TABLES = ("CustomersTable", "CodesTable", "ReferralCountsTable", "ReferralsTable", "InvitesTable")


def erase(customer_id: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("erase-customer.json"))
    event["arguments"] = {"customerId": customer_id}
    return function("PrivacyFunction").invoke(event)


def export(customer_id: str, next_token: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("export-customer.json"))
    event["arguments"] = {"customerId": customer_id, **({"nextToken": next_token} if next_token else {})}
    return function("PrivacyFunction").invoke(event)


def customer_deleted(customer_id: Any, **detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("customer-deleted.json"))
    event["id"] = new_id("event")
    event["detail"] = {"customerId": customer_id, **detail} if customer_id is not None else detail
    return function("PrivacyFunction").invoke(event)


def invite(customer_id: str, email: str, *addresses: str) -> dict[str, Any]:
    return call_api("send-referral-email.json", customer_id, email, arguments={"emailAddresses": list(addresses)})


def referrals_of(customer_id: str, email: str) -> list[dict[str, Any]]:
    answer = call_api("customer-referrals.json", customer_id, email, arguments={"offset": 0, "limit": 50})
    return answer["data"]["items"]


def tables() -> dict[str, list[dict[str, Any]]]:
    """Every item of every table (a scan: fine in a test, never on a request path)."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    found = {}
    for table in TABLES:
        items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
        found[table] = sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return found


def referrer_with_friends(friends: int) -> tuple[str, str, list[str]]:
    referrer = new_id("referrer")
    code = register(referrer, f"{referrer}@example.com", "Rita Referrer")["data"]["customer"]["referralCode"]
    made = []
    for _ in range(friends):
        friend = new_id("friend")
        assert register(friend, f"{friend}@example.com", "Fran Friend", code=code)["data"]["newCustomer"] is True
        made.append(friend)
    return referrer, code, made


def test_sample_events_invoke_the_handler():
    # Given the sample events `sam local invoke PrivacyFunction -e ...` takes, on an empty store
    # When each is invoked, Then each answers (nothing to erase yet, an empty export)
    assert function("PrivacyFunction").invoke(load_event("erase-customer.json"))["data"]["erased"] == []
    assert function("PrivacyFunction").invoke(load_event("customer-deleted.json"))["outcome"] == "NOTHING_LEFT"
    exported = function("PrivacyFunction").invoke(load_event("export-customer.json"))["data"]
    assert exported["account"] is None and exported["referralsMade"]["items"] == []


@pytest.mark.parametrize("friends", [1, 30])
def test_erasing_a_referrer_costs_the_same_whatever_they_did(friends, calls):
    # Given a referrer with 1 or 30 friends, who also invited someone (a rate-limit bucket) and whose friend ordered
    referrer, _, made = referrer_with_friends(friends)
    invite(referrer, f"{referrer}@example.com", "someone@example.org")
    deliver(placed("o-1", made[0], _at(made[0])))
    # When the referrer is erased
    calls.reset()
    answer = erase(referrer)["data"]
    # Then one read and one transaction, whatever the number of referrals
    assert calls.count() == {"BatchGetItem": 1, "TransactWriteItems": 1}
    assert answer["erased"] == ["ACCOUNT", "REFERRAL_CODE", "REFERRAL_COUNT", "INVITE_LIMIT"]
    assert answer["customerId"] == referrer


def _at(friend: str) -> datetime:
    return registered_at(friend) + timedelta(hours=1)


def test_erasing_twice_is_erasing_once(calls):
    # Given a friend who invited someone, and was referred
    pair = referred_friend()
    invite(pair.friend, f"{pair.friend}@example.com", "someone@example.org")
    first = erase(pair.friend)["data"]
    after_first = tables()
    # When the same erasure comes again (a retried call, a redelivered event)
    calls.reset()
    second = erase(pair.friend)["data"]
    third = customer_deleted(pair.friend)
    # Then it finds nothing left, reads once, writes nothing, and the store is as the first left it
    assert first["erased"] == ["ACCOUNT", "REFERRAL_CODE", "REFERRAL_COUNT", "FRIEND_NAME", "INVITE_LIMIT"]
    assert second["erased"] == [] and third == {"outcome": "NOTHING_LEFT", "erased": []}
    assert calls.count() == {"BatchGetItem": 2}
    assert tables() == after_first


def test_nothing_personal_of_the_erased_customer_is_left():
    # Given Xavier, referred by Rita, who was invited before signing up, invited a friend, and referred one
    rita = new_id("rita")
    rita_code = register(rita, "rita@example.com", "Rita Referrer")["data"]["customer"]["referralCode"]
    xavier, xavier_email = new_id("xavier"), "Xavier.Uniquename@example.com"
    assert invite(rita, "rita@example.com", xavier_email)["data"] is True
    answer = register(xavier, xavier_email, "Xavier Uniquename", code=rita_code)["data"]
    xavier_code = answer["customer"]["referralCode"]
    invite(xavier, xavier_email, "someone.else@example.org")
    friend = new_id("friend")
    register(friend, f"{friend}@example.com", "Fran Friend", code=xavier_code)
    email_hash = emails.identity_hash(xavier_email)
    # When Xavier is erased
    erase(xavier)
    # Then no item holds his name, masked name or email hash, but the cool-down claim Rita's invite made, which
    # expires within the cool-down (it keeps his mailbox from being mailed again meanwhile: docs/privacy.md)
    leftovers = []
    for table, items in tables().items():
        for item in items:
            text = json.dumps(item)
            if "Xavier" in text or "Uniquename" in text or email_hash in text:
                leftovers.append((table, item))
    ((table, claim),) = leftovers
    assert table == "InvitesTable" and claim["pk"]["S"] == f"ADDRESS#default#{email_hash}"
    assert int(claim["expiresAt"]["N"]) <= int(claim["invitedAt"]["N"]) + 30 * 86_400
    # The account is gone, the code disabled and stripped of its owner, the referral that brought him anonymised
    assert storage.load_customer(xavier) is None
    code = storage.load_code(xavier_code)
    assert code.status == "DISABLED" and code.owner_first_name is None and code.owner_email_hash is None
    assert code.customer_id is None
    assert referral(xavier).friend_name == privacy.ERASED_FRIEND_NAME
    # And his friend's own referral (their record) is untouched
    assert referral(friend).friend_name == "Fran F." and referral(friend).referrer_id == xavier


def test_a_friends_erasure_keeps_the_referrers_count_and_earned_reward():
    # Given a friend whose order stood and earned their referrer the reward
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    assert reconcile(at + timedelta(days=14))["earned"] == 1
    # When the friend is erased
    erase(pair.friend)
    # Then the referrer still counts them, still has the reward (once), and sees them as a former customer
    referrer_email = f"{pair.referrer}@example.com"
    assert customer(pair.referrer, referrer_email)["data"]["referralCount"] == 1
    assert referral(pair.friend).status == "EARNED"
    assert reconcile(at + timedelta(days=20))["earned"] == 0
    assert len(bus.rewards(pair.friend)) == 1
    (seen,) = referrals_of(pair.referrer, referrer_email)
    assert seen["friendName"] == privacy.ERASED_FRIEND_NAME and seen["status"] == "EARNED"


def test_a_friend_erased_during_the_return_window_still_earns_the_referrer_the_reward():
    # Given a friend's qualifying order inside its return window
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    # When the friend is erased before the window closes
    erase(pair.friend)
    # Then the referrer's reward is earned when it closes, as it would have been
    assert reconcile(at + timedelta(days=14))["earned"] == 1
    (reward,) = bus.rewards(pair.friend)
    assert reward["detail"]["referrerId"] == pair.referrer


def test_the_erased_referrers_code_can_no_longer_be_used_and_their_friends_are_untouched():
    # Given a referrer with one friend
    referrer, code, (friend,) = referrer_with_friends(1)
    before = referral(friend)
    # When the referrer is erased
    erase(referrer)
    # Then (in an environment that has not cached the code: registrations cache a code for a few seconds)
    storage.forget_code(code)
    late = register(new_id("late"), "late@example.com", "Late Friend", code=code)["data"]
    assert late["error"] == "INVALID_DATA"
    assert late["fieldErrors"] == [{"fieldName": "referralCode", "validators": ["REFERRAL_CODE_DISABLED"]}]
    lookup = copy.deepcopy(load_event("referral-offer-query.json"))  # a landing page, with the API key
    lookup["arguments"] = {"code": code}
    assert function("ApiFunction").invoke(lookup)["data"]["valid"] is False
    assert customer(referrer, f"{referrer}@example.com") == {"data": None}
    after = referral(friend)
    assert (after.status, after.friend_name, after.referrer_id) == (before.status, before.friend_name, referrer)


def test_customer_deleted_erases_as_the_mutation_does(calls):
    # Given two friends of one referrer
    referrer, _, (by_event, by_call) = referrer_with_friends(2)
    # When one is erased by a CustomerDeleted event and the other by the mutation
    calls.reset()
    answer = customer_deleted(by_event)
    assert calls.count() == {"BatchGetItem": 1, "TransactWriteItems": 1}
    erase(by_call)
    # Then both are erased alike, and the referrer's count stays
    assert answer == {"outcome": "ERASED", "erased": ["ACCOUNT", "REFERRAL_CODE", "REFERRAL_COUNT", "FRIEND_NAME"]}
    for friend in (by_event, by_call):
        assert storage.load_customer(friend) is None
        assert referral(friend).friend_name == privacy.ERASED_FRIEND_NAME
    assert customer(referrer, f"{referrer}@example.com")["data"]["referralCount"] == 2
    # And the event's time is the erasure's time (a replay erases as of the same moment)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    pk, sk = storage.ReferralItem.key_for(by_event)
    item = dynamodb.get_item(TableName="ReferralsTable", Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]
    assert item["erasedAt"] == {"S": "2026-12-05T09:30:00.000+00:00"}


@pytest.mark.parametrize(
    "detail",
    [{}, {"customerId": ""}, {"customerId": "a\nb"}, {"customerId": "x" * 129}, {"customerId": 42}],
    ids=["missing", "empty", "control", "long", "number"],
)
def test_a_malformed_customer_event_is_dead_lettered_and_succeeds(detail, calls):
    # Given a CustomerDeleted event without a usable customer id
    event = copy.deepcopy(load_event("customer-deleted.json"))
    event["detail"] = detail
    # When it is delivered
    calls.reset()
    answer = function("PrivacyFunction").invoke(event)
    # Then it is refused without touching the store, and dead-lettered with the reason (never the value)
    assert answer["outcome"] == "MALFORMED" and answer["problem"].startswith("customerId: ")
    assert calls.count() == {"SendMessage": 1}
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="CustomerEventsDeadLetterQueue")["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert message["MessageAttributes"]["Reason"]["StringValue"] == "MALFORMED"


@pytest.mark.parametrize(
    "identity",
    [
        load_event("customer-query.json")["identity"],  # a shopper's Cognito token
        {**load_event("erase-customer.json")["identity"], "cognitoIdentityPoolId": "eu-west-1:pool"},  # a guest
        None,  # an API key
    ],
    ids=["cognito-user", "identity-pool", "api-key"],
)
def test_only_servers_signing_with_iam_may_erase_or_export(identity, calls):
    # Given an account
    me = new_id()
    register(me, "me@example.com")
    for sample in ("erase-customer.json", "export-customer.json"):
        # When anyone but an IAM principal of the account reaches the function (AppSync already refuses them)
        event = copy.deepcopy(load_event(sample))
        event["arguments"], event["identity"] = {"customerId": me}, identity
        calls.reset()
        answer = function("PrivacyFunction").invoke(event)
        # Then it is refused before any AWS call
        assert answer["error"]["type"] == "Unauthorized" and calls.count() == {}
    assert storage.load_customer(me) is not None


@pytest.mark.parametrize(
    ("customer_id", "reason"),
    [("", "REQUIRED"), ("   ", "REQUIRED"), ("a\r\nb", "INVALID_CHARACTERS"), ("x" * 129, "MAX_LENGTH")],
)
def test_a_bad_customer_id_is_a_validation_error_naming_the_field(customer_id, reason, calls):
    for call in (erase, export):
        calls.reset()
        answer = call(customer_id)
        assert answer["error"]["type"] == "ValidationError"
        assert answer["error"]["info"] == {"field": "customerId", "reason": reason}
        assert calls.count() == {}


@pytest.mark.parametrize("friends", [1, 30])
def test_the_export_holds_the_customers_referral_data_at_a_constant_cost(friends, calls):
    # Given Xavier: referred by Rita, with an order recorded, inviting two friends, and referring `friends` friends
    rita = new_id("rita")
    rita_code = register(rita, "rita@example.com", "Rita Referrer")["data"]["customer"]["referralCode"]
    xavier, email = new_id("xavier"), "xavier@example.com"
    xavier_code = register(xavier, email, "Xavier Quist", code=rita_code)["data"]["customer"]["referralCode"]
    at = _at(xavier)
    deliver(placed("o-9", xavier, at, amount="45.00"))
    invite(xavier, email, "one@example.org", "two@example.org")
    for _ in range(friends):
        friend = new_id("friend")
        register(friend, f"{friend}@example.com", "Fran Friend", code=xavier_code)
    # When his data is exported
    calls.reset()
    found = export(xavier)["data"]
    # Then five requests, whatever the number of referrals
    assert calls.count() == {"BatchGetItem": 1, "GetItem": 1, "Query": 3}
    assert found["customerId"] == xavier
    assert found["account"]["firstName"] == "Xavier" and found["account"]["site"] == "default"
    assert found["account"]["emailHash"] == emails.identity_hash(email)
    assert found["referralCode"]["code"] == xavier_code and found["referralCode"]["status"] == "ACTIVE"
    assert found["referralCode"]["referralLink"].endswith(f"applyCode={xavier_code}")
    assert found["referralCount"] == friends
    received = found["referredBy"]
    assert (received["code"], received["status"], received["friendName"]) == (rita_code, "PENDING", "Xavier Q.")
    assert received["orderEvents"] == [
        {
            "orderId": "o-9",
            "kind": "PLACED",
            "at": received["orderEvents"][0]["at"],
            "amount": "45.00",
            "currency": "GBP",
        }
    ]
    made = found["referralsMade"]
    assert len(made["items"]) == friends and made["total"] == friends and made["nextToken"] is None
    assert {item["friendName"] for item in made["items"]} == {"Fran F."}
    assert [i["createdAt"] for i in made["items"]] == sorted((i["createdAt"] for i in made["items"]), reverse=True)
    assert found["invites"] == {"sent": 2, "periodDays": 30}
    # And nothing of Rita (another customer) is in it
    assert rita not in json.dumps(found) and "Rita" not in json.dumps(found)


def test_the_export_pages_through_referrals_made(monkeypatch):
    # Given a referrer with five friends, and pages of two
    monkeypatch.setattr(privacy, "EXPORT_PAGE_SIZE", 2)
    referrer, _, _ = referrer_with_friends(5)
    # When the export follows nextToken
    pages, token = [], None
    while True:
        page = export(referrer, token)["data"]["referralsMade"]
        pages.append(page["items"])
        token = page["nextToken"]
        if token is None:
            break
    # Then every referral comes once, newest first, over three pages
    assert [len(p) for p in pages] == [2, 2, 1]
    stamps = [item["createdAt"] for page in pages for item in page]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == 5


def test_the_export_pages_through_every_count_shard(monkeypatch, calls):
    # Given a referrer whose count (and so their referrals' index entries) spread over four shards, and pages of 3
    monkeypatch.setattr(privacy, "EXPORT_PAGE_SIZE", 3)
    referrer, made = spread_referrer(10)
    # When the export follows nextToken
    seen, token, queries = [], None, 0
    while True:
        calls.reset()
        page = export(referrer, token)["data"]["referralsMade"]
        queries += calls.count().get("Query", 0) - 2  # less the ledger's and ByInviter's
        seen += [item["createdAt"] for item in page["items"]]
        token = page["nextToken"]
        if token is None:
            break
        assert len(page["items"]) == 3  # a page is filled from the next shard when one runs out
    # Then every referral made comes once, whichever shard it is in; each shard newest first
    assert sorted(seen) == sorted(set(seen)) and len(seen) == len(made) == 10
    assert queries <= 4 + 4  # at most one Query per shard, plus one per page that stopped inside a shard


def test_an_export_token_of_the_earlier_form_goes_on_in_the_first_shard(monkeypatch):
    # Given a token as exports gave them before the index was sharded: [pk, sk, createdAt]
    monkeypatch.setattr(privacy, "EXPORT_PAGE_SIZE", 1)
    referrer, _, _ = referrer_with_friends(2)
    first = export(referrer)["data"]["referralsMade"]
    newest = storage.ReferralItem.by_referrer.query(referrer, scan_index_forward=False, limit=1).next()
    old = base64.urlsafe_b64encode(json.dumps([newest.pk, newest.sk, newest.created_at]).encode()).decode()
    # When the export goes on from it, Then it answers the page after, as the new token does
    after_old = export(referrer, old)["data"]["referralsMade"]
    assert after_old == export(referrer, first["nextToken"])["data"]["referralsMade"]


def test_exporting_an_account_that_is_gone_looks_under_every_shard_key(calls):
    # Given a viral referrer erased: nothing says any more how far their count spread
    referrer, made = spread_referrer(8)
    erase(referrer)
    # When they are exported
    calls.reset()
    exported = export(referrer)["data"]
    # Then every referral they made is still found (anonymised of nothing of theirs), under all 64 shard keys:
    # 64 Query, plus the ledger's and ByInviter's, and one BatchGetItem for the account that is no more
    assert exported["account"] is None and len(exported["referralsMade"]["items"]) == len(made)
    assert calls.count() == {"BatchGetItem": 1, "Query": 64 + 2}


@pytest.mark.parametrize("token", ["not base64 !", "W10", "WyJ4IiwieSIsInoiXQ", "a" * 3000])
def test_a_token_the_export_did_not_give_is_refused(token, calls):
    calls.reset()
    answer = export(new_id(), token)
    assert answer["error"]["type"] == "ValidationError" and answer["error"]["info"]["field"] == "nextToken"
    assert calls.count() == {}


def test_the_export_after_erasure_shows_what_is_still_held():
    # Given a friend with a recorded order, erased
    pair = referred_friend()
    deliver(placed("o-1", pair.friend, pair.registered_at + timedelta(hours=1)))
    erase(pair.friend)
    # When exported
    found = export(pair.friend)["data"]
    # Then no account, no code, and the referral that brought them, anonymised, with its order facts until their TTL
    assert found["account"] is None and found["referralCode"] is None and found["referralCount"] == 0
    assert found["referredBy"]["friendName"] == privacy.ERASED_FRIEND_NAME
    assert [e["orderId"] for e in found["referredBy"]["orderEvents"]] == ["o-1"]


def test_a_suppressed_address_keeps_no_inviter():
    # Given an address a customer invited that then hard-bounced
    me = new_id()
    register(me, "me@example.com")
    invite(me, "me@example.com", "bounce@example.org")
    event = copy.deepcopy(load_event("ses-bounce.json"))
    event["detail"]["bounce"]["bouncedRecipients"] = [{"emailAddress": "bounce@example.org"}]
    function("MailEventsFunction").invoke(event)
    # Then the suppression (kept for good) holds no inviter, and the customer's export no longer counts it
    item = storage.AddressItem.get(storage.AddressItem.key_for("default", emails.identity_hash("bounce@example.org")))
    assert item.suppressed_at and item.invited_by is None and item.invited_at is None
    assert export(me)["data"]["invites"]["sent"] == 0


def test_a_count_spread_over_shards_is_erased_whole(calls):
    # Given a viral referrer whose count was spread over four shards (referrals.counting)
    referrer, code, _ = referrer_with_friends(1)
    assert storage.grow_count_shards(storage.load_code(code), 1, 4)
    for shard in range(1, 4):
        storage.CountItem.of(referrer, shard, count=2).save()
    assert customer(referrer, f"{referrer}@example.com")["data"]["referralCount"] == 7
    # When they are erased
    calls.reset()
    erase(referrer)
    # Then still one read and one transaction, and no shard of their count is left
    assert calls.count() == {"BatchGetItem": 1, "TransactWriteItems": 1}
    assert count_by_shard(referrer) == {}
