"""The whole programme through the pages, in a real browser: sign in, invite a friend, open the mail's
link, land, register with the kept code, place an order, run the reconciliation fifteen days on,
see the reward."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.browser.pages import (
    by_id,
    fill,
    invite,
    known_people,
    register_here,
    session_storage,
    sign_in,
    submit,
    text,
    wait,
    wait_text,
)

pytestmark = pytest.mark.browser


def reconcile_function(local_api: Any) -> str:
    """The scheduled reconciliation, found by its hourly ScheduleV2 event rather than by name."""
    status, functions = local_api.request("GET", "/_local/functions")
    assert status == 200
    hourly = {"type": "ScheduleV2", "expression": "rate(1 hour)"}
    (logical_id,) = [f["logicalId"] for f in functions if hourly in f["events"]]
    return logical_id


def test_a_friend_invited_by_mail_registers_orders_and_the_referrer_earns(page, local_api, screenshot):
    base = local_api.base
    run = uuid.uuid4().hex[:8]
    alice, alice_email = f"alice-{run}", f"alice.{run}@example.com"
    bob_email = f"bob.{run}@example.net"

    # Given Alice signs in on the console and registers
    sign_in(page, base, alice, alice_email)
    code = register_here(page, "Alice Smith")
    assert text(page, "referral-count") == "0"
    assert text(page, "referral-link").endswith(f"/referrals.list?applyCode={code}")
    share = [a.text for a in page.find_elements(By.CSS_SELECTOR, "#share a")]
    assert "Share by email" in share

    # When she invites Bob
    assert "Sent 1 invite" in invite(page, bob_email)

    # Then the outbox shows one mail to Bob, rendered in a sandboxed frame, with the invite's link
    mail = wait(
        page,
        lambda d: next((m for m in d.find_elements(By.CSS_SELECTOR, "#outbox-list > li") if bob_email in m.text), None),
    )
    assert mail.find_element(By.TAG_NAME, "details").get_attribute("open") is not None  # the newest is open
    frame = mail.find_element(By.CSS_SELECTOR, "iframe.mail")
    assert frame.get_attribute("sandbox") == ""
    assert code in frame.get_attribute("srcdoc")
    link = mail.find_element(By.CSS_SELECTOR, "a[data-invite-link]")
    assert link.get_attribute("href") == f"{base}/referrals.list?applyCode={code}"

    # When Bob opens the mail's link
    link.click()
    wait_text(page, "referrer", "Alice")

    # Then the landing page says who invited him and what he is offered, and keeps the code
    assert text(page, "offer-text")
    assert by_id(page, "referral-code").get_attribute("value") == code
    assert session_storage(page, "referralCode") == code
    page.get(base + "/referrals.list")  # he browses away and back: the code is still kept
    wait_text(page, "referrer", "Alice")
    assert by_id(page, "referral-code").get_attribute("value") == code
    screenshot("landing")

    # When he registers there with the kept code
    fill(page, "full-name", "Bob Jones")
    fill(page, "email", bob_email)
    submit(page, "register-form")
    wait_text(page, "register-status", "Welcome, Bob Jones")

    # Then the code has done its job and is forgotten; Alice counts one friend
    assert session_storage(page, "referralCode") is None
    (bob,) = [p["sub"] for p in known_people(page) if p["email"] == bob_email]
    page.get(base + "/")
    wait_text(page, "who-status", f"Signed in as {alice}")
    wait(page, lambda d: d.find_element(By.ID, "referral-count").text == "1")
    wait_text(page, "referrals-rows", "Bob J")

    # When Bob places a 45.00 GBP order an hour later, and the reconciliation runs fifteen days after that
    page.find_element(By.CSS_SELECTOR, "[data-shift='3600']").click()
    assert "1 hour from now" in text(page, "clock-iso")
    fill(page, "order-customer", bob)
    fill(page, "order-id", f"order-{run}")
    fill(page, "order-amount", "45.00")
    submit(page, "order-form")
    wait_text(page, "order-status", "delivered")
    page.find_element(By.CSS_SELECTOR, "[data-shift='1296000']").click()
    assert "15 days 1 hour from now" in text(page, "clock-iso")
    reconcile = reconcile_function(local_api)
    page.find_element(By.CSS_SELECTOR, f"button[data-logical-id={reconcile}]").click()
    wait_text(page, "schedule-status", f"{reconcile} ran")

    # Then the reward event is published once, and Alice's referral shows EARNED
    reward = wait_text(page, "published-list", "ReferralRewardEarned")
    assert bob in reward and alice in reward
    page.find_element(By.ID, "referrals-refresh").click()
    wait_text(page, "referrals-rows", "EARNED")
    _, published = local_api.request("GET", "/_local/published")
    earned = [e for e in published if e["DetailType"] == "ReferralRewardEarned" and e["Detail"]["refereeId"] == bob]
    assert len(earned) == 1
    assert earned[0]["Detail"]["referrerId"] == alice
    assert earned[0]["Detail"]["orderId"] == f"order-{run}"
    assert earned[0]["Detail"]["reward"] == {"type": "ACCOUNT_CREDIT", "amount": "5.00", "currency": "GBP"}
    screenshot("console")


def test_a_chosen_code_a_friend_on_the_other_site_and_the_programmes_funnel(page, local_api, screenshot):
    base = local_api.base
    run = uuid.uuid4().hex[:8].upper()
    alice, fritz = f"alice-{run}", f"fritz-{run}"

    # Given Alice registers on the default site and chooses her own code
    sign_in(page, base, alice, f"alice.{run}@example.com")
    first = register_here(page, "Alice Smith")
    fill(page, "change-code-input", f"al {run} ".lower().replace(" ", ""))
    submit(page, "change-code")
    wait_text(page, "change-code-status", f"Your code is now AL{run}")
    wait(page, lambda d: d.find_element(By.ID, "referral-code").text.strip() == f"AL{run}")

    # When Fritz, on the German site of her group, registers with her first code (it keeps working)
    sign_in(page, base, fritz, f"fritz.{run}@example.de", site="de")
    register_here(page, "Fritz Freund", first)
    assert text(page, "referral-link").startswith("https://shop.example.de/")

    # Then Alice counts one friend, on de
    sign_in(page, base, alice, f"alice.{run}@example.com")
    wait(page, lambda d: d.find_element(By.ID, "referral-count").text == "1")
    counts = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#referral-counts li")]
    assert counts == ["de: 1", "default: 0"]

    # And the programme's figures for de show the sign-up in the funnel and the chart per day
    by_id(page, "figures-site").send_keys("de")
    submit(page, "figures-form")
    wait_text(page, "figures-status", "Site de")
    cells = [r.find_elements(By.TAG_NAME, "td") for r in page.find_elements(By.CSS_SELECTOR, "#funnel-rows tr")]
    rows = {row[0].text: row for row in cells}
    assert int(rows["Sign-ups with a code"][1].text) >= 1
    funnel = page.find_element(By.CSS_SELECTOR, "#funnel svg")
    assert "Sign-ups with a code" in funnel.get_attribute("aria-label")
    assert page.find_elements(By.CSS_SELECTOR, "#daily svg rect")
    screenshot("figures")
