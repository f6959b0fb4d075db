"""The programme's figures (docs/programme.md): counted where they happen, exact, read by programmeStats."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referrals import offers, programme, storage
from referrals.config import parse_settings
from tests.conftest import load_event, new_id
from tests.integration.helpers import call_api, customer, function, register
from tests.integration.rewards_helpers import cancelled, deliver, later, placed, reconcile, refunded, registered_at

pytestmark = pytest.mark.usefixtures("aws_env")

ZERO = dict.fromkeys(storage.FIGURES, 0)


def stats(site: str = "default", first: str | None = None, last: str | None = None) -> dict:
    """programmeStats through the function that serves it, as AppSync calls it for an IAM-signed caller."""
    today = programme.today()
    event = copy.deepcopy(load_event("programme-stats.json"))
    event["arguments"] = {"siteKey": site, "from": first or today, "to": last or today}
    return function("ReviewFunction").invoke(event)


def totals(site: str = "default", first: str | None = None, last: str | None = None) -> dict:
    return stats(site, first, last)["data"]["totals"]


def test_a_sign_up_with_a_code_counts_once_on_the_friends_site_and_day():
    before = totals()
    referrer = new_id()
    code = register(referrer, "r@example.com")["data"]["customer"]["referralCode"]
    register(new_id(), "f@example.org", "Fran Friend", code=code)
    register(new_id(), "g@example.org", "Gil Friend")  # no code: not a sign-up with a code
    register(new_id(), "h@example.org", "Hal Friend", code="NOSUCH99")  # refused: not counted
    after = totals()
    assert after["signUpsWithCode"] - before["signUpsWithCode"] == 1
    assert {k: after[k] - before[k] for k in after if k != "signUpsWithCode"} == dict.fromkeys(
        [k for k in ZERO if k != "signUpsWithCode"], 0
    )


def test_invites_count_one_per_friend_mailed():
    me = new_id()
    email = f"{me}@example.com"
    register(me, email)
    before = totals()["invitesSent"]
    answer = call_api(
        "send-referral-email.json", me, email, arguments={"emailAddresses": ["a@example.org", "b@example.org"]}
    )
    assert answer == {"data": True}
    # Again: both recently invited, so nothing is mailed and nothing counted
    call_api("send-referral-email.json", me, email, arguments={"emailAddresses": ["a@example.org", "b@example.org"]})
    assert totals()["invitesSent"] - before == 2


def test_lookups_count_valid_codes_only():
    code = register(new_id(), "r@example.com")["data"]["customer"]["referralCode"]
    before = totals()["offerLookups"]
    site_settings = parse_settings("{}")
    assert offers.lookup(site_settings, code, "198.51.100.1").valid is True
    assert offers.lookup(site_settings, "ZZZZ9999", "198.51.100.1").valid is False
    assert offers.lookup(site_settings, "not a code", "198.51.100.1").valid is False
    assert totals()["offerLookups"] - before == 1


def test_the_reward_journey_is_counted_on_the_days_it_happened():
    referrer = new_id()
    code = register(referrer, "r@example.com")["data"]["customer"]["referralCode"]
    friend = new_id()
    register(friend, "f@example.org", "Fran Friend", code=code)
    start = registered_at(friend)
    day = lambda moment: moment.astimezone(UTC).date().isoformat()  # noqa: E731
    first, last = day(start), day(later(start, days=40))
    before = totals(first=first, last=last)
    # A qualifying order on day 2 falls on day 3 (cancelled); another on day 5 stands and earns on day 20
    deliver(placed("o1", friend, later(start, days=2)))
    deliver(cancelled("o1", friend, later(start, days=3)))
    mid = totals(first=first, last=last)
    assert mid["firstQualifyingOrders"] - before["firstQualifyingOrders"] == 1
    assert mid["rewardsReversed"] - before["rewardsReversed"] == 1
    deliver(placed("o2", friend, later(start, days=5)))
    reconcile(later(start, days=20))
    after = stats(first=first, last=last)["data"]
    gained = {k: after["totals"][k] - before[k] for k in ZERO}
    # The reversal was made good by o2: it no longer counts; the first qualifying order stays on day 2
    assert gained == {**ZERO, "signUpsWithCode": 0, "firstQualifyingOrders": 1, "rewardsEarned": 1}
    by_day = {d["date"]: d["figures"] for d in after["days"]}
    assert by_day[day(later(start, days=2))]["signUpsWithCode"] >= 0
    assert len(after["days"]) == 41


def test_an_earlier_order_delivered_late_moves_the_first_qualifying_order_to_its_day():
    code = register(new_id(), "r@example.com")["data"]["customer"]["referralCode"]
    friend = new_id()
    register(friend, "f@example.org", "Fran Friend", code=code)
    start = registered_at(friend)
    d3, d1 = later(start, days=3), later(start, days=1)

    def on(moment: datetime) -> int:
        iso = moment.astimezone(UTC).date().isoformat()
        return totals(first=iso, last=iso)["firstQualifyingOrders"]

    base3, base1 = on(d3), on(d1)
    deliver(placed("late", friend, d3))
    assert (on(d3) - base3, on(d1) - base1) == (1, 0)
    deliver(placed("early", friend, d1))  # placed first, delivered second
    assert (on(d3) - base3, on(d1) - base1) == (0, 1)


def test_the_figures_of_every_day_are_listed_zeros_included_and_the_range_is_checked():
    answer = stats("default", "2020-02-27", "2020-03-01")["data"]
    assert [d["date"] for d in answer["days"]] == ["2020-02-27", "2020-02-28", "2020-02-29", "2020-03-01"]
    assert answer["totals"] == ZERO and answer["siteKey"] == "default"


@pytest.mark.parametrize(
    ("arguments", "field", "reason"),
    [
        ({"siteKey": "nowhere"}, "siteKey", "UNKNOWN_SITE"),
        ({"siteKey": "x" * 100_000}, "siteKey", "UNKNOWN_SITE"),
        ({"siteKey": None}, "siteKey", "UNKNOWN_SITE"),
        ({"from": "2026-02-30"}, "from", "NOT_A_DATE"),
        ({"from": "2026-1-1"}, "from", "NOT_A_DATE"),
        ({"to": "2026-01-01\x00"}, "to", "NOT_A_DATE"),
        ({"to": 20260101}, "to", "NOT_A_DATE"),
        ({"from": "2026-02-02", "to": "2026-02-01"}, "to", "BEFORE_FROM"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to", "RANGE_TOO_LONG"),
    ],
)
def test_bad_arguments_are_a_named_validation_error(arguments, field, reason, calls):
    event = copy.deepcopy(load_event("programme-stats.json"))
    event["arguments"] = {"siteKey": "default", "from": "2026-01-01", "to": "2026-01-31", **arguments}
    calls.reset()
    answer = function("ReviewFunction").invoke(event)
    assert answer["error"]["type"] == "ValidationError"
    assert answer["error"]["info"] == {"field": field, "reason": reason}
    assert calls.count("dynamodb") == {}


def test_a_report_reads_one_query_per_shard_and_the_customer_query_reads_no_more(calls):
    me = new_id()
    register(me, "me@example.com")
    calls.reset()
    stats("default", "2025-12-01", "2026-11-30")
    assert calls.count("dynamodb") == {"Query": storage.FIGURE_SHARDS}
    calls.reset()
    customer(me, "me@example.com")
    assert calls.count("dynamodb") == {"BatchGetItem": 1}


# ---------- exact whatever the interleaving and redelivery ----------

_ORDER = st.tuples(
    st.sampled_from(["PLACED", "CANCELLED", "REFUNDED"]),
    st.sampled_from(["a", "b", "c"]),
    st.integers(min_value=1, max_value=30),  # day after registration
    st.sampled_from(["20.00", "35.00", "50.00"]),
    st.sampled_from(["GBP", "EUR"]),
)


def _events(friend: str, start: datetime, facts: list[tuple]) -> list[dict]:
    made = []
    for kind, order, days, amount, currency in facts:
        at = later(start, days=days, minutes=len(made))
        if kind == "PLACED":
            made.append(placed(order, friend, at, amount, currency))
        elif kind == "CANCELLED":
            made.append(cancelled(order, friend, at))
        else:
            made.append(refunded(order, friend, at, "30.00", currency))
    return made


def _expected(start: datetime, events: list[dict]) -> dict[str, dict[str, int]]:
    """What the whole set of facts gives, decided once by the pure rules (referrals.rewards.lifecycle): the figures
    each day should gain from this friend."""
    from referrals.config import RewardRules
    from referrals.order_events import parse_order_event
    from referrals.rewards import lifecycle

    orders = lifecycle.fold(parse_order_event(e) for e in events)
    rules = RewardRules()
    after = lifecycle.project(rules, "GBP", start, orders.values(), later(start, days=31))
    marks = lifecycle.milestones(rules, "GBP", start, orders.values(), after)
    gained: dict[str, dict[str, int]] = {}
    for figure, day in (
        ("signUpsWithCode", start.astimezone(UTC).date().isoformat()),
        ("firstQualifyingOrders", marks.qualified_on),
        ("rewardsReversed", marks.reversed_on),
    ):
        if day:
            gained.setdefault(day, dict(ZERO))[figure] += 1
    return gained


def _by_day(first: str, last: str) -> dict[str, dict[str, int]]:
    return {d["date"]: d["figures"] for d in stats("default", first, last)["data"]["days"]}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# One fact of each kind per order: the commerce system never places one order twice with other figures, and our
# ledger keeps the first of two such (referrals.rewards: a fact's key is its order and kind).
@given(
    facts=st.lists(_ORDER, min_size=1, max_size=6, unique_by=lambda f: (f[0], f[1])),
    seed=st.integers(0, 2**32 - 1),
    threaded=st.booleans(),
)
def test_whatever_the_order_and_redelivery_the_figures_equal_what_happened(facts, seed, threaded):
    from concurrent.futures import ThreadPoolExecutor

    code = register(new_id(), "r@example.com")["data"]["customer"]["referralCode"]
    friend = new_id()
    first, last = programme.today(), programme.today(datetime.now(UTC) + timedelta(days=32))
    before = _by_day(first, last)
    register(friend, "f@example.org", "Fran Friend", code=code)
    start = registered_at(friend)
    events = _events(friend, start, facts)
    rng = random.Random(seed)
    deliveries = events + [rng.choice(events) for _ in range(rng.randint(0, 3))]  # at least once
    rng.shuffle(deliveries)  # out of order
    if threaded:  # and at once
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(deliver, deliveries))
    else:
        for event in deliveries:
            deliver(event)
    after = _by_day(first, last)
    gained = {
        day: {k: after[day][k] - before[day][k] for k in ZERO}
        for day in after
        if any(after[day][k] != before[day][k] for k in ZERO)
    }
    assert gained == _expected(start, events)


def test_lookups_and_invites_never_touch_the_items_sign_ups_write_in_their_transactions():
    # A transaction finding an item in another request's hands is cancelled: public lookups must not slow sign-ups
    code = register(new_id(), "r@example.com")["data"]["customer"]["referralCode"]
    register(new_id(), "f@example.org", "Fran Friend", code=code)
    offers.lookup(parse_settings("{}"), code, "198.51.100.2")
    items = [i for i in storage.FiguresItem.scan()]
    alone = [i for i in items if i.sk.endswith("#ALONE")]
    together = [i for i in items if not i.sk.endswith("#ALONE")]
    assert all(i.offer_lookups is None and i.invites_sent is None for i in together)
    assert all(i.sign_ups_with_code is None for i in alone)
    assert any(i.offer_lookups for i in alone) and any(i.sign_ups_with_code for i in together)


@pytest.mark.parametrize("zone", ["", "Z", "+01:00", "-05:30"])
def test_a_date_may_carry_a_zone_as_aws_date_allows(zone):
    answer = stats("default", f"2026-03-01{zone}", f"2026-03-02{zone}")
    assert [d["date"] for d in answer["data"]["days"]] == ["2026-03-01", "2026-03-02"]
