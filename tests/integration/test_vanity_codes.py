"""Vanity codes (changeReferralCode): chosen, matched as one across look-alikes, earlier codes kept as aliases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from referrals import customers, storage
from referrals.config import parse_settings
from tests.conftest import new_id
from tests.integration.helpers import call_api, customer, register

pytestmark = pytest.mark.usefixtures("aws_env")


def change(customer_id: str, code, email: str | None = None) -> dict:
    return call_api(
        "change-referral-code.json", customer_id, email or f"{customer_id}@example.com", arguments={"code": code}
    )["data"]


def _account(referrer: str | None = None) -> tuple[str, str]:
    me = referrer or new_id()
    code = register(me, f"{me}@example.com")["data"]["customer"]["referralCode"]
    return me, code


def offer(code: str) -> dict:
    from referrals import offers

    return customers_shape(offers.lookup(parse_settings("{}"), code, "198.51.100.7"))


def customers_shape(value) -> dict:
    from graphql_adapter import shape

    return shape(value)


def test_a_chosen_code_replaces_the_shown_one_and_the_old_one_stays_an_alias():
    me, old = _account()
    answer = change(me, "  sarah20 ")
    assert answer["error"] is None and answer["fieldErrors"] == []
    assert answer["customer"]["referralCode"] == "SARAH20"
    assert customer(me, f"{me}@example.com")["data"]["referralCode"] == "SARAH20"
    # Both codes sign friends up to the same referrer, and both sign-ups count
    for code in ("sarah20", old):
        friend = register(new_id(), "f@example.org", "Fran Friend", code=code)["data"]
        assert friend["error"] is None
    assert customer(me, f"{me}@example.com")["data"]["referralCount"] == 2
    assert offer(old)["valid"] is True and offer("SARAH20")["code"] == "SARAH20"


def test_look_alike_characters_are_one_code_for_taking_and_for_matching():
    me, _ = _account()
    assert change(me, "HELLO2U")["error"] is None
    # Taking: 0 for O, 1 for L, I for L
    other, _ = _account()
    for look_alike in ("HE110ZU".replace("Z", "2"), "HEIIO2U", "he1lo2u"):
        assert change(other, look_alike)["error"] == "CODE_TAKEN"
    # Matching: a friend who types zeros and ones is still Alice's friend
    friend = new_id()
    assert register(friend, "f@example.org", "Fran Friend", code="HE110 2U".replace(" ", ""))["data"]["error"] is None
    link = storage.ReferralItem.get(*storage.ReferralItem.key_for(friend))
    assert link.referrer_id == me


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("abc", "BADLY_FORMED"),
        ("A" * 17, "BADLY_FORMED"),
        ("SARAH-20", "BADLY_FORMED"),
        ("SÄRAH20", "BADLY_FORMED"),
        ("SARAH\x0020", "BADLY_FORMED"),
        ("X" * 100_000, "BADLY_FORMED"),
        ("ADMIN", "RESERVED"),
        ("promo10", "RESERVED"),
        ("FUCK20", "OFFENSIVE"),
        ("B00BS", "OFFENSIVE"),
    ],
)
def test_a_badly_formed_reserved_or_offensive_code_is_refused_naming_why_and_nothing_changes(code, reason):
    me, old = _account()
    answer = change(me, code)
    assert answer["error"] == "INVALID_DATA" and answer["customer"] is None
    assert answer["fieldErrors"] == [{"fieldName": "code", "validators": [reason]}]
    assert customer(me, f"{me}@example.com")["data"]["referralCode"] == old


@pytest.mark.parametrize("code", [None, 42, ["ABCD1234"], {"code": "X"}])
def test_a_code_of_the_wrong_type_is_badly_formed(code):
    me, _ = _account()
    assert change(me, code)["fieldErrors"] == [{"fieldName": "code", "validators": ["BADLY_FORMED"]}]


def test_a_code_anyone_holds_now_or_held_before_cannot_be_taken():
    alice, alice_first = _account()
    assert change(alice, "ALICE2026")["error"] is None
    bob, bob_code = _account()
    assert change(bob, "ALICE2026")["error"] == "CODE_TAKEN"  # Alice's current
    assert change(bob, alice_first)["error"] == "CODE_TAKEN"  # Alice's earlier
    assert change(bob, bob_code)["error"] == "CODE_TAKEN"  # his own, too: it is held
    assert customer(bob, f"{bob}@example.com")["data"]["referralCode"] == bob_code


def test_one_change_per_thirty_days():
    me, _ = _account()
    settings = parse_settings("{}")
    caller = customers.Caller(me, f"{me}@example.com", "default")
    start = datetime.now(UTC)
    assert customers.change_referral_code(settings, caller, "FIRST1", start).error is None
    assert customers.change_referral_code(settings, caller, "SECOND2", start + timedelta(days=29)).error == "TOO_SOON"
    later = customers.change_referral_code(settings, caller, "SECOND2", start + timedelta(days=30, seconds=1))
    assert later.error is None and later.customer is not None and later.customer.referral_code == "SECOND2"


def test_the_wait_is_a_site_setting():
    me, _ = _account()
    settings = parse_settings('{"sites": {"default": {"codeChangeDays": 0}}}')
    caller = customers.Caller(me, f"{me}@example.com", "default")
    assert customers.change_referral_code(settings, caller, "FIRST1").error is None
    assert customers.change_referral_code(settings, caller, "SECOND2").error is None


def test_no_account_is_no_account():
    assert change(new_id(), "SARAH20") == {"customer": None, "error": "NO_ACCOUNT", "fieldErrors": []}
    with pytest.raises(storage.CodeItem.DoesNotExist):
        storage.CodeItem.get("SARAH20")


def test_of_many_customers_taking_one_code_at_once_exactly_one_wins():
    people = [_account()[0] for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda me: change(me, "WINNER1"), people))
    winners = [me for me, answer in zip(people, answers, strict=True) if answer["error"] is None]
    assert len(winners) == 1
    assert sorted(a["error"] for a in answers if a["error"]) == ["CODE_TAKEN"] * 7
    assert storage.CodeItem.get("W1NNER1").customer_id == winners[0]


def test_one_customer_changing_twice_at_once_changes_once():
    me, _ = _account()
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda code: change(me, code), ["RACEONE1", "RACETWO2"]))
    assert sorted(str(a["error"]) for a in answers) == ["None", "TOO_SOON"]
    won = next(a for a in answers if a["error"] is None)["customer"]["referralCode"]
    assert customer(me, f"{me}@example.com")["data"]["referralCode"] == won


def test_erasure_disables_every_code_the_customer_held(calls):
    from referrals import privacy

    me, first = _account()
    change(me, "GONE2026")
    privacy.erase(me, datetime.now(UTC))
    for code in (first, "G0NE2026"):
        assert storage.CodeItem.get(code).status == "DISABLED"
    assert register(new_id(), "f@example.org", code="GONE2026")["data"]["fieldErrors"][0]["validators"] == [
        "REFERRAL_CODE_DISABLED"
    ]


def test_a_change_makes_two_requests(calls):
    me, _ = _account()
    calls.reset()
    assert change(me, "COUNTED1")["error"] is None
    assert calls.count("dynamodb") == {"BatchGetItem": 1, "TransactWriteItems": 1}


def test_a_customer_holds_at_most_fifteen_earlier_codes_and_erasure_disables_them_all():
    from referrals import codes, privacy

    me, first = _account()
    settings = parse_settings('{"sites": {"default": {"codeChangeDays": 0}}}')
    caller = customers.Caller(me, f"{me}@example.com", "default")
    chosen = [f"MINE{n:02d}X" for n in range(codes.MAX_EARLIER_CODES)]
    for code in chosen:
        assert customers.change_referral_code(settings, caller, code).error is None
    assert customers.change_referral_code(settings, caller, "ONEMORE1").error == "TOO_MANY_CODES"
    assert storage.load_customer(me).code == chosen[-1]
    # 16 codes, every count shard and the account: one transaction, inside DynamoDB's 100 items
    assert privacy.erase(me, datetime.now(UTC)).erased[:2] == ["ACCOUNT", "REFERRAL_CODE"]
    for code in [first, *chosen]:
        assert storage.CodeItem.get(codes.key(code)).status == "DISABLED"


def test_an_erasure_racing_a_code_change_reads_again_and_disables_the_new_code_too():
    from referrals import codes, privacy

    me, first = _account()
    targets = storage.load_erasure_targets(me)  # erasure reads...
    assert change(me, "RACED2026")["error"] is None  # ...the customer chooses a code meanwhile...
    # ...so erasure's transaction, made from its read, is refused whole rather than miss the new code
    assert storage.erase_customer(me, targets, "Former customer", "2026-11-28T00:00:00.000+00:00") is False
    assert storage.CodeItem.get(codes.key("RACED2026")).status == "ACTIVE"
    privacy.erase(me, datetime.now(UTC))  # which reads again
    for code in (first, "RACED2026"):
        assert storage.CodeItem.get(codes.key(code)).status == "DISABLED"


def test_a_code_narrower_than_its_owners_count_catches_up_instead_of_staying_stuck():
    me, first = _account()
    change(me, "NARROW22")
    # The earlier code's registrations spread the account over 4 shards; the chosen code still says 1
    assert storage.grow_count_shards(storage.load_code(first), 1, 4)
    chosen = storage.load_code("NARR0W22")
    assert storage.shards_of(chosen) == 1
    # Growing it from 1 to 2 would shrink the account: refused; the code takes the account's 4 instead
    assert storage.grow_count_shards(chosen, 1, 2) is False
    assert storage.shards_of(storage.load_customer(me)) == 4
    assert storage.catch_up_count_shards(chosen, 1) == 4
    assert storage.shards_of(storage.CodeItem.get("NARR0W22", consistent_read=True)) == 4


def test_earlier_and_current_codes_share_one_sign_up_velocity_limit(monkeypatch):
    import json

    from devserver.lambdas import LocalFunction
    from devserver.stack import Stack
    from tests.integration.helpers import appsync_event

    monkeypatch.setenv("SITES_CONFIG", json.dumps({"sites": {"default": {"abuse": {"velocityLimit": 1}}}}))
    api = LocalFunction(Stack().functions()["ApiFunction"])

    def sign_up(customer_id: str, code: str | None = None) -> None:
        arguments = {"input": {"fullName": "Fran Friend", **({"referralCode": code} if code else {})}}
        api.invoke(appsync_event("register.json", customer_id, f"{customer_id}@example.org", arguments=arguments))

    me = new_id()
    sign_up(me)
    first = storage.load_customer(me).code
    api.invoke(appsync_event("change-referral-code.json", me, f"{me}@example.org", arguments={"code": "SHARED11"}))
    friends = [new_id(), new_id()]
    sign_up(friends[0], first)
    sign_up(friends[1], "SHARED11")  # the same referrer, the same source: past the limit of 1
    flags = [storage.ReferralItem.get(*storage.ReferralItem.key_for(f)).review_reason for f in friends]
    assert flags == [None, "VELOCITY"]
