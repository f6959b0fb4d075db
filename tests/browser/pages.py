"""Small steps on the console and the landing page, as a person takes them (type, click, read)."""

from __future__ import annotations

import json
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT_S = 20


def wait(driver: Any, condition: Any, timeout: float = TIMEOUT_S) -> Any:
    # The pages replace lists wholesale when they refresh: an element seen a moment ago may be gone.
    ignored = (StaleElementReferenceException,)
    return WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=ignored).until(condition)


def by_id(driver: Any, element_id: str) -> WebElement:
    return driver.find_element(By.ID, element_id)


def text(driver: Any, element_id: str) -> str:
    return by_id(driver, element_id).text


def wait_text(driver: Any, element_id: str, fragment: str) -> str:
    """Wait until the element shows the fragment; on timeout, say what it showed instead."""
    try:
        wait(driver, lambda d: fragment in d.find_element(By.ID, element_id).text)
    except Exception as error:
        raise AssertionError(
            f"#{element_id} never showed {fragment!r}; it shows {text(driver, element_id)!r}"
        ) from error
    return text(driver, element_id)


def fill(driver: Any, element_id: str, value: str) -> None:
    field = by_id(driver, element_id)
    field.clear()
    field.send_keys(value)


def click(driver: Any, element_id: str) -> None:
    by_id(driver, element_id).click()


def submit(driver: Any, form_id: str) -> None:
    """Press the form's submit button, as a person would (so the browser's own checks apply)."""
    driver.find_element(By.CSS_SELECTOR, f"#{form_id} button[type=submit]").click()


def session_storage(driver: Any, key: str) -> str | None:
    return driver.execute_script("return sessionStorage.getItem(arguments[0])", key)


def known_people(driver: Any) -> list[dict[str, str]]:
    return json.loads(driver.execute_script("return localStorage.getItem('referrals.local.people') || '[]'"))


def sign_in(driver: Any, base: str, sub: str, email: str, site: str = "default") -> None:
    driver.get(base + "/")
    fill(driver, "sign-in-sub", sub)
    fill(driver, "sign-in-email", email)
    fill(driver, "sign-in-site", site)
    submit(driver, "sign-in")
    wait_text(driver, "who-status", f"Signed in as {sub}")


def register_here(driver: Any, full_name: str, code: str = "") -> str:
    """Register the signed-in identity on the console; answers its new referral code."""
    wait_text(driver, "code-status", "has no account")
    fill(driver, "register-name", full_name)
    fill(driver, "register-code", code)
    submit(driver, "register")
    wait(driver, lambda d: d.find_element(By.ID, "referral-code").text.strip())
    return text(driver, "referral-code").strip()


def invite(driver: Any, *addresses: str) -> str:
    fill(driver, "invite-addresses", "\n".join(addresses))
    submit(driver, "invite-form")
    wait(driver, lambda d: d.find_element(By.ID, "invite-status").text not in ("", "Sending…"))
    return text(driver, "invite-status")
