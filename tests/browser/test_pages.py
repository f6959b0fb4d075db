"""The console and the landing page on their own: unknown codes, the rate-limit answer, the GraphQL box,
and use by keyboard, in a narrow window and with enough contrast."""

from __future__ import annotations

import uuid

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from tests.browser import a11y
from tests.browser.pages import (
    by_id,
    fill,
    invite,
    register_here,
    session_storage,
    sign_in,
    submit,
    text,
    wait,
    wait_text,
)

pytestmark = pytest.mark.browser


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_an_unknown_code_gets_a_clear_message_and_is_not_kept(page, local_api):
    # When a friend arrives with a code nobody owns
    page.get(local_api.base + "/referrals.list?applyCode=NOPE2345")

    # Then the page says so plainly, and neither keeps the code nor fills it in
    message = wait_text(page, "offer-status", "We don't recognise the code")
    assert "NOPE2345" in message
    assert by_id(page, "offer").is_displayed() is False
    assert by_id(page, "referral-code").get_attribute("value") == ""
    assert session_storage(page, "referralCode") is None


def test_a_code_typed_wrong_at_registration_is_explained_next_to_the_field(page, local_api):
    # Given a friend on the landing page with no code kept
    page.get(local_api.base + "/referrals.list")
    page.execute_script("sessionStorage.clear()")
    page.refresh()
    wait_text(page, "offer-status", "Create your account")

    # When they send the form half filled in, they are told what to fix, starting with the first field
    fill(page, "email", "not an address")
    submit(page, "register-form")
    assert wait_text(page, "full-name-error", "Please fill this in")
    assert "like name@example.com" in text(page, "email-error")
    assert page.switch_to.active_element.get_attribute("id") == "full-name"

    # When they type a code that does not exist and register
    fill(page, "full-name", "Dora Lee")
    fill(page, "email", f"{unique('dora')}@example.com")
    fill(page, "referral-code", "ZZZZ2345")
    submit(page, "register-form")

    # Then the field says why, and nothing else is claimed
    assert "don't recognise this code" in wait_text(page, "referral-code-error", "recognise")
    assert by_id(page, "referral-code").get_attribute("aria-invalid") == "true"
    assert "Please check the form" in text(page, "register-status")


def test_rate_limited_invites_say_how_long_to_wait(page, local_api):
    # Given a customer who has spent the whole bucket (20 addresses, 10 a call)
    sign_in(page, local_api.base, unique("carol"), f"{unique('carol')}@example.com")
    register_here(page, "Carol King")
    run = uuid.uuid4().hex[:8]
    for batch in range(2):
        sent = invite(page, *(f"friend{batch}x{n}.{run}@example.org" for n in range(10)))
        assert "Sent 10 invites" in sent

    # When she sends one more
    answer = invite(page, f"one.more.{run}@example.org")

    # Then she is told, in words, how long to wait and from when
    assert "You have sent as many invites as you can for now" in answer
    assert "You can send more in" in answer
    assert any(unit in answer for unit in ("minute", "hour", "second"))
    when = by_id(page, "invite-status").find_element(By.TAG_NAME, "time")
    assert when.get_attribute("datetime")


def test_the_graphql_box_runs_any_operation(page, local_api):
    sign_in(page, local_api.base, unique("erin"), f"{unique('erin')}@example.com")
    wait_text(page, "code-status", "has no account")
    fill(page, "graphql-query", 'mutation { register(input: {fullName: "Erin Moss"}) { newCustomer error } }')
    submit(page, "graphql-form")
    wait_text(page, "graphql-status", "HTTP 200")
    assert '"newCustomer": true' in text(page, "graphql-result")


def test_the_console_works_by_keyboard_alone(page, local_api):
    page.get(local_api.base + "/")
    keys = ActionChains(page)
    sub = unique("kim")

    # The first Tab reaches the skip link; following it lands on the sign-in form
    keys.send_keys(Keys.TAB).perform()
    assert page.switch_to.active_element.text == "Skip to the console"
    keys.send_keys(Keys.ENTER).perform()
    keys.send_keys(Keys.TAB).perform()
    assert page.switch_to.active_element.get_attribute("id") == "sign-in-sub"

    # Typing and Enter sign in
    keys.key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(sub).perform()
    keys.send_keys(Keys.TAB).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL)
    keys.send_keys(f"{sub}@example.com", Keys.ENTER).perform()
    wait_text(page, "who-status", f"Signed in as {sub}")


def test_both_pages_pass_the_checks_wide_and_narrow(page, local_api):
    # Given a signed-in customer, so the console shows its code, share buttons and forms
    sign_in(page, local_api.base, unique("faye"), f"{unique('faye')}@example.com")
    register_here(page, "Faye Wong")
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#share a"))

    for width in (1280, 360):
        page.set_window_size(width, 900)
        assert a11y.problems(page) == {}, f"console at {width}px"

    page.get(local_api.base + "/referrals.list")
    wait(page, lambda d: d.find_element(By.ID, "offer-status").text != "Checking your invitation…")
    for width in (1280, 360):
        page.set_window_size(width, 900)
        assert a11y.problems(page) == {}, f"landing page at {width}px"


def test_a_friend_registers_with_a_code_on_the_console_and_orders_that_fall_reverse(page, local_api):
    # Given Alice's code, and Bob signed in on the console with no account
    alice, bob = unique("alice"), unique("bob")
    sign_in(page, local_api.base, alice, f"{alice}@example.com")
    code = register_here(page, "Alice Smith")
    sign_in(page, local_api.base, bob, f"{bob}@example.com")

    # When Bob registers with her code, typed carelessly
    register_here(page, "Bob Jones", f"  {code.lower()} ")
    assert f"Linked to the code {code}" in text(page, "register-status")

    # And, an hour later, orders 45.00 GBP (picked from the people who signed in here), then cancels it
    page.find_element(By.CSS_SELECTOR, "[data-shift='3600']").click()
    page.find_element(By.CSS_SELECTOR, "#order-people button[aria-label^='Order as Bob Jones']").click()
    assert by_id(page, "order-customer").get_attribute("value") == bob
    submit(page, "order-form")
    wait_text(page, "order-status", "OrderPlaced")
    order_type = Select(by_id(page, "order-type"))
    order_type.select_by_visible_text("Order cancelled")
    assert not by_id(page, "order-amount").is_displayed()
    submit(page, "order-form")
    wait_text(page, "order-status", "OrderCancelled")

    # Then, signed in again as Alice (one click), her referral shows Bob and why it did not earn
    page.find_element(By.CSS_SELECTOR, f"#people button[data-sub='{alice}']").click()
    wait_text(page, "who-status", f"Signed in as {alice}")
    wait(page, lambda d: d.find_element(By.ID, "referral-count").text == "1")
    rows = wait_text(page, "referrals-rows", "REVERSED")
    assert "Bob J" in rows
    assert "The order was cancelled" in rows

    # When Bob orders again a day later and 20.00 of the 45.00 is refunded (25.00 left, under 30.00)
    page.find_element(By.CSS_SELECTOR, "[data-shift='86400']").click()
    page.find_element(By.ID, "order-new").click()
    order_type.select_by_visible_text("Order placed")
    submit(page, "order-form")
    wait_text(page, "order-status", "OrderPlaced")
    wait_text(page, "referrals-rows", "PENDING")
    order_type.select_by_visible_text("Order refunded")
    assert text(page, "order-amount-label") == "Amount refunded"
    fill(page, "order-amount", "20.00")
    submit(page, "order-form")
    wait_text(page, "order-status", "OrderRefunded")

    # Then the referral has fallen again, and says it was the refund
    page.find_element(By.ID, "referrals-refresh").click()
    assert "The order was refunded below the minimum" in wait_text(page, "referrals-rows", "refunded")
