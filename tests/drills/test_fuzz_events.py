"""Hostile order events, generated: every field of the envelope and of the detail. The handler never fails
on what a retry cannot mend: a malformed event is dead-lettered and writes nothing; a well-formed one for a
customer nobody referred writes nothing either; no float ever reaches the money."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devserver.samples import load_event
from referrals import storage
from tests.integration.rewards_helpers import deliver, referral, referred_friend

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=5,
)
amounts = st.one_of(
    st.sampled_from(["45.00", "30", "29.999", "-45.00", "1e3", "NaN", "Infinity", "45,00", "", " 45.00 ", "0x2D"]),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    anything,
)


def _items_written() -> int:
    return sum(1 for _ in storage.ReferralItem.scan())  # a test's own table: counting it is the point here


@FUZZ
@given(
    field=st.sampled_from(["id", "time", "source", "detail-type", "detail"]),
    value=anything,
)
def test_any_envelope_field_of_any_type(aws_env, field, value):
    event = copy.deepcopy(load_event("order-placed.json"))
    event[field] = value
    before = _items_written()
    answer = deliver(event)
    assert isinstance(answer, dict) and answer.get("outcome")
    if answer["outcome"] == "MALFORMED":
        assert _items_written() == before


@FUZZ
@given(
    order_id=st.one_of(st.text(max_size=300), anything),
    amount=amounts,
    currency=st.one_of(st.sampled_from(["GBP", "gbp", "EUR", "", "GBP\r\n", "XXXX"]), anything),
)
def test_any_detail_of_a_placed_order_for_a_referred_friend(aws_env, order_id, amount, currency):
    pair = referred_friend()
    event = copy.deepcopy(load_event("order-placed.json"))
    event["detail"] = {
        "orderId": order_id,
        "customerId": pair.friend,
        "total": {"amount": amount, "currency": currency},
    }
    answer = deliver(event)
    assert isinstance(answer, dict) and answer.get("outcome")
    status = referral(pair.friend).status
    if answer["outcome"] == "MALFORMED":
        assert status == "REGISTERED"
    else:
        # Only a real decimal of at least 30.00 in the site's currency can make the friend's order pending
        assert status in {"REGISTERED", "PENDING"}
        if status == "PENDING":
            assert currency == "GBP" and float(str(amount)) >= 30.0
