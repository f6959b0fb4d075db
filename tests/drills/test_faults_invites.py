"""Faults at every AWS call of sendReferralEmail: each DynamoDB call and the SES call, each kind of fault.

After each: a clean, typed error or a retry that succeeds; nothing half-done (a token is spent and a cool-down
claim held for exactly the friends who were mailed); and the same request again converges to every friend
mailed exactly once. SES refusing some recipients and all of them: each reported, their tokens given back.

Each test runs at a frozen moment of its own (a day after the last test's), so a bucket's stored TAT says
exactly how many tokens are spent. Counted in the report: FAULTS.total_injected after this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from moto.core.responses import ActionResult
from moto.ses.responses import EmailResponse

from referrals import errors, invites, storage
from referrals.config import DEFAULT_SITE, load_mail_settings, parse_settings
from referrals.customers import Caller
from referrals.ratelimit import invite_bucket, site_send_bucket
from tests.conftest import AWS_CALLS, new_id
from tests.drills.invite_helpers import (
    SEND,
    Env,
    claimed_by,
    clean,
    mails_to,
    next_day,
    not_sent,
    register,
    spent,
    stack_env,
)
from tests.faults import DENIED, DROPPED, KINDS, LOST, TLS, UNREACHABLE, WRITES

CUSTOMER_BUCKET = invite_bucket(DEFAULT_SITE.invites.bucket_capacity, DEFAULT_SITE.invites.refill_per_day)
SITE_BUCKET = site_send_bucket(DEFAULT_SITE.invites.site_sends_per_second, DEFAULT_SITE.invites.site_burst_seconds)

# The AWS calls each flow makes, in order (test_each_flow_makes_the_calls_the_drill_enumerates checks them).
FLOWS: dict[str, list[tuple[str, str]]] = {
    # two new friends, both buckets untouched
    "send": [
        ("GetItem", "account"),
        ("UpdateItem", "customer bucket"),
        ("UpdateItem", "site bucket"),
        ("UpdateItem", "claim friend 1"),
        ("UpdateItem", "claim friend 2"),
        ("SendBulkTemplatedEmail", "mail"),
        ("UpdateItem", "programme figures"),
    ],
    # one new friend, both buckets part-spent earlier the same moment: each bucket's fresh write is refused
    # (it returns the stored TAT) and its queued write follows
    "send again": [
        ("GetItem", "account"),
        ("UpdateItem", "customer bucket, fresh (refused)"),
        ("UpdateItem", "customer bucket, queued"),
        ("UpdateItem", "site bucket, fresh (refused)"),
        ("UpdateItem", "site bucket, queued"),
        ("UpdateItem", "claim friend 1"),
        ("SendBulkTemplatedEmail", "mail"),
        ("UpdateItem", "programme figures"),
    ],
    # two new friends, SES refuses the second (once): its claim is released and both buckets refunded
    "send, SES refuses one": [
        ("GetItem", "account"),
        ("UpdateItem", "customer bucket"),
        ("UpdateItem", "site bucket"),
        ("UpdateItem", "claim friend 1"),
        ("UpdateItem", "claim friend 2"),
        ("SendBulkTemplatedEmail", "mail"),
        ("DeleteItem", "release friend 2"),
        ("UpdateItem", "refund customer bucket"),
        ("UpdateItem", "refund site bucket"),
        ("UpdateItem", "programme figures"),
    ],
}
FRIENDS = {"send": 2, "send again": 1, "send, SES refuses one": 2}


def _cases(kinds: tuple[str, ...] = KINDS) -> Iterator[Any]:
    """Each distinct call once: a step an earlier flow already drilled (the account read, a claim, the mail) is
    the same request in the same state, so only its first flow breaks it. Each write also loses its answer
    after it was applied (LOST)."""
    drilled: set[str] = set()
    for flow, steps in FLOWS.items():
        for call, (operation, step) in enumerate(steps, start=1):
            if step in drilled:
                continue
            drilled.add(step)
            for kind in (*kinds, LOST) if operation in WRITES else kinds:
                if kind == "conflict" and operation == "SendBulkTemplatedEmail":
                    continue  # a transaction conflict is DynamoDB's: SES has no such answer
                yield pytest.param(flow, call, kind, id=f"{flow}-{call}:{step}-{kind}")


# ---------- moto for the module, a clock per test, SES refusing chosen recipients ----------


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with stack_env() as env:
        yield env


@pytest.fixture
def now(monkeypatch) -> datetime:
    moment = next_day()

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return moment

    monkeypatch.setattr(invites, "datetime", Frozen)
    return moment


@pytest.fixture
def ses_refuses(monkeypatch) -> set[str]:
    """Addresses SES refuses (each once), per destination, as SES reports it: status MessageRejected, nothing
    sent to them. moto accepts every destination, so its SendBulkTemplatedEmail is wrapped to refuse these."""
    refuse: set[str] = set()
    original = EmailResponse.send_bulk_templated_email

    def send_bulk_templated_email(self: EmailResponse) -> ActionResult:
        destinations = self._get_param("Destinations", [])
        refused = [bool(set(d["Destination"]["ToAddresses"]) & refuse) for d in destinations]
        if not any(refused):
            return original(self)
        for destination, no in zip(destinations, refused, strict=True):
            if no:
                refuse.difference_update(destination["Destination"]["ToAddresses"])
        accepted = [d for d, no in zip(destinations, refused, strict=True) if not no]
        ids = iter(
            self.backend.send_bulk_templated_email(
                self._get_param("Source"), self._get_param("Template"), self._get_param("DefaultTemplateData"), accepted
            ).ids
            if accepted
            else []
        )
        status = [
            {"Status": "MessageRejected", "Error": "Email address is on the suppression list"}
            if no
            else {"Status": "Success", "MessageId": next(ids)}
            for no in refused
        ]
        return ActionResult({"Status": status})

    monkeypatch.setattr(EmailResponse, "send_bulk_templated_email", send_bulk_templated_email)
    return refuse


def spent_by(customer_id: str, now: datetime) -> tuple[int, int]:
    """(the customer's tokens spent, the site's)."""
    return spent(f"CUSTOMER#{customer_id}", CUSTOMER_BUCKET, now), spent("SITE#default", SITE_BUCKET, now)


# ---------- the flows ----------


def member(env: Env) -> tuple[str, str]:
    me = new_id()
    email = f"{me}@example.com"
    register(env, me, email)
    return me, email


def friends(count: int) -> list[str]:
    return [f"friend{i}-{new_id('f')}@example.org" for i in range(count)]


def prepare(flow: str, env: Env, ses_refuses: set[str]) -> tuple[str, str, list[str], int]:
    """A registered customer, the friends the flow invites, and the tokens spent before it (for `send again`)."""
    me, email = member(env)
    before = 0
    if flow == "send again":
        assert env.call(SEND, {"a": friends(3)}, me, email) == {"data": {"sendReferralEmail": True}}
        before = 3
    invited = friends(FRIENDS[flow])
    if flow == "send, SES refuses one":
        ses_refuses.add(invited[1])
    return me, email, invited, before


@pytest.mark.parametrize("flow", list(FLOWS))
def test_each_flow_makes_the_calls_the_drill_enumerates(env, now, ses_refuses, flow):
    me, email, invited, _ = prepare(flow, env, ses_refuses)
    AWS_CALLS.reset()
    env.call(SEND, {"a": invited}, me, email)
    assert [op for _, op in AWS_CALLS.calls] == [op for op, _ in FLOWS[flow]]


@pytest.mark.parametrize(("flow", "call", "kind"), list(_cases()))
def test_a_lasting_fault_answers_cleanly_and_leaves_nothing_half_done(env, faults, now, ses_refuses, flow, call, kind):
    me, email, invited, before = prepare(flow, env, ses_refuses)
    step = FLOWS[flow][call - 1][1]
    # Given call N of the flow keeps failing (every HTTP attempt botocore makes)
    faults.arm(call, kind)
    answer = env.call(SEND, {"a": invited}, me, email)
    faults.disarm()
    assert faults.injected >= 1
    if step == "mail" and kind in MAY_HAVE_SENT:
        _assert_sent_at_most_once(env, now, answer, me, email, invited, before, kind)
        return
    # Then the client gets a clean, typed error, or true with what was not mailed beside it
    types = clean(answer)
    mailed = [a for a in invited if mails_to(a)]
    assert all(mails_to(a) == 1 for a in mailed)
    if answer["data"]["sendReferralEmail"] is True:
        assert set(not_sent(answer)) == set(invited) - set(mailed)
    else:
        assert types in (["ServiceBusy"], ["InvitationsNotSent"]) and mailed == []
    # And nothing is half-done: a token and a claim for each friend mailed, and for no one else. The exceptions,
    # bounded: a give-back that DynamoDB itself kept refusing (its token, or its claim, stays); a take whose every
    # answer was lost (applied, once, and never known to be: its tokens stay spent until they refill)
    customer, site = spent_by(me, now)
    lost = kind == LOST and "(refused)" not in step  # a write DynamoDB refuses applies nothing to lose
    refused_give_back = kind != LOST
    assert customer == before + len(mailed) + (
        (step == "refund customer bucket" and refused_give_back) or (lost and step.startswith("customer bucket"))
    ) * (len(invited) if lost else 1)
    assert site == before + len(mailed) + (
        (step == "refund site bucket" and refused_give_back) or (lost and step.startswith("site bucket"))
    ) * (len(invited) if lost else 1)
    for address in invited:
        kept = step == "release friend 2" and address == invited[1] and refused_give_back
        assert claimed_by(me, address) == (address in mailed or kept), address
    # When the same request comes again, without the fault (nor SES's refusal), every friend is mailed once;
    # only a claim DynamoDB would not release keeps its friend waiting out the cool-down
    ses_refuses.clear()
    again = env.call(SEND, {"a": invited}, me, email)
    assert again["data"]["sendReferralEmail"] is True, again
    stuck = [invited[1]] if step == "release friend 2" and kind != LOST else []
    assert [mails_to(a) for a in invited] == [0 if a in stuck else 1 for a in invited]
    assert not_sent(again) == dict.fromkeys([*mailed, *stuck], "RECENTLY_INVITED")
    # and the second call spent one token per friend, as any call does (skipped friends keep theirs)
    assert spent_by(me, now)[0] == customer + len(invited)


# SES answers that say it may have sent (a 5xx, no answer in time, the answer lost): never sent again (mailer).
MAY_HAVE_SENT = ("internal", "timeout", LOST)


def _assert_sent_at_most_once(
    env: Env, now: datetime, answer: dict, me: str, email: str, invited: list[str], before: int, kind: str
) -> None:
    """SES may have mailed the friends without saying so: reported SEND_UNCONFIRMED, their claims and tokens kept, so
    the same request again skips them as recently invited. A friend whose mail went (the answer lost) has it once; a
    friend whose mail never went waits out the cool-down: at most once, never twice."""
    assert answer["data"]["sendReferralEmail"] is True
    assert not_sent(answer) == dict.fromkeys(invited, "SEND_UNCONFIRMED")
    assert [mails_to(a) for a in invited] == [1 if kind == LOST else 0] * len(invited)
    assert all(claimed_by(me, a) for a in invited)
    assert spent_by(me, now) == (before + len(invited),) * 2
    again = env.call(SEND, {"a": invited}, me, email)
    assert again["data"]["sendReferralEmail"] is True
    assert not_sent(again) == dict.fromkeys(invited, "RECENTLY_INVITED")
    assert [mails_to(a) for a in invited] == [1 if kind == LOST else 0] * len(invited)


def _retried(flow: str, call: int, kind: str) -> bool:
    """What a passing fault is retried at: every DynamoDB call; the SES send only when it cannot have been sent."""
    return not (FLOWS[flow][call - 1][1] == "mail" and kind in MAY_HAVE_SENT)


@pytest.mark.parametrize(
    ("flow", "call", "kind"),
    [case for case in _cases(("throttling", "internal", "timeout")) if _retried(*case.values)],
)
def test_a_passing_fault_is_retried_away(env, faults, now, ses_refuses, flow, call, kind):
    me, email, invited, before = prepare(flow, env, ses_refuses)
    # Given call N fails once, as AWS does now and then
    faults.arm(call, kind, attempts=1)
    answer = env.call(SEND, {"a": invited}, me, email)
    # Then botocore's retry absorbs it: the answer is what it would have been without the fault
    assert faults.injected == 1
    assert answer["data"]["sendReferralEmail"] is True and clean(answer) in ([], ["InvitationsNotSent"])
    refused = set(invited[1:]) if flow == "send, SES refuses one" else set()
    assert not_sent(answer) == dict.fromkeys(refused, "SEND_FAILED")
    assert [mails_to(a) for a in invited] == [0 if a in refused else 1 for a in invited]
    assert spent_by(me, now) == (before + len(invited) - len(refused),) * 2


def test_ses_refusing_some_recipients_reports_them_and_gives_their_tokens_back(env, now, ses_refuses):
    me, email = member(env)
    invited = friends(4)
    ses_refuses.update(invited[1::2])
    # When SES refuses two of four destinations (per destination, in a call it otherwise accepted)
    answer = env.call(SEND, {"a": invited}, me, email)
    # Then true, each refused address reported, only the others mailed, spent and claimed
    assert answer["data"] == {"sendReferralEmail": True}
    assert not_sent(answer) == dict.fromkeys(invited[1::2], "SEND_FAILED")
    assert [mails_to(a) for a in invited] == [1, 0, 1, 0]
    assert [claimed_by(me, a) for a in invited] == [True, False, True, False]
    assert spent_by(me, now) == (2, 2)
    # And asking again mails just those two
    again = env.call(SEND, {"a": invited}, me, email)
    assert not_sent(again) == dict.fromkeys(invited[::2], "RECENTLY_INVITED")
    assert [mails_to(a) for a in invited] == [1, 1, 1, 1]


def test_ses_refusing_every_recipient_fails_the_call_and_spends_nothing(env, now, ses_refuses):
    me, email = member(env)
    invited = friends(3)
    ses_refuses.update(invited)
    answer = env.call(SEND, {"a": invited}, me, email)
    # Then no data, one InvitationsNotSent naming every address, nothing mailed, spent or claimed
    assert answer["data"] == {"sendReferralEmail": None}
    assert clean(answer) == ["InvitationsNotSent"]
    assert not_sent(answer) == dict.fromkeys(invited, "SEND_FAILED")
    assert [mails_to(a) for a in invited] == [0, 0, 0]
    assert not any(claimed_by(me, a) for a in invited)
    assert spent_by(me, now) == (0, 0)
    # And the same request again goes out in full
    assert env.call(SEND, {"a": invited}, me, email) == {"data": {"sendReferralEmail": True}}
    assert [mails_to(a) for a in invited] == [1, 1, 1]


@pytest.mark.parametrize("kind", ["throttling", "internal"])
def test_ses_failing_the_whole_second_call_keeps_the_first(env, faults, now, kind):
    # Given a site that takes 60 addresses a call (two SES calls: 50 + 10), and SES failing the second call:
    # throttled every time (nothing sent), or a 5xx (it may have sent)
    site = replace(DEFAULT_SITE, invites=replace(DEFAULT_SITE.invites, max_addresses_per_call=60, bucket_capacity=60))
    settings = replace(parse_settings("{}"), sites={"default": site})
    me, email = member(env)
    invited = friends(60)
    second_send = 1 + 2 + 60 + 2  # account, two buckets, sixty claims, the first SES call, the second
    # (a throttled send is asked again, up to three times in all: each is a call of its own)
    faults.arm([second_send, second_send + 1, second_send + 2] if kind == "throttling" else second_send, kind)
    outcome = invites.send_invites(settings, load_mail_settings(), Caller(me, email, "default"), invited)
    faults.disarm()
    # Then the first 50 went out; the last 10 are reported: throttled, after three tries, released and refunded;
    # after a 5xx (one try: SES may have sent them), unconfirmed, their claims and tokens kept
    assert faults.injected == (3 if kind == "throttling" else 1)
    refused = kind == "throttling"
    assert len(outcome.sent) == 50
    assert [r for _, r in outcome.not_sent] == ["SEND_FAILED" if refused else "SEND_UNCONFIRMED"] * 10
    assert [mails_to(a) for a in invited] == [1] * 50 + [0] * 10
    assert [claimed_by(me, a) for a in invited] == [True] * 50 + [not refused] * 10
    assert spent(f"CUSTOMER#{me}", invite_bucket(60, site.invites.refill_per_day), now) == (50 if refused else 60)


def test_ses_unreachable_is_tried_again_and_mails_once(env, faults, now):
    # Given SES that cannot be reached on the first try (no connection: nothing can have been sent)
    me, email = member(env)
    invited = friends(2)
    faults.arm(1 + 2 + 2 + 1, UNREACHABLE, attempts=1)  # account, two buckets, two claims, the send
    answer = env.call(SEND, {"a": invited}, me, email)
    # Then the send is made again and each friend mailed once
    assert faults.injected == 1
    assert answer == {"data": {"sendReferralEmail": True}}
    assert [mails_to(a) for a in invited] == [1, 1]


def _fail_on(count: int, original: Any) -> Any:
    """`original`, except that its `count`-th call raises before doing anything (a bug, a crash in our code)."""
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == count:
            raise RuntimeError("injected between two steps")
        return original(*args, **kwargs)

    return wrapper


BETWEEN = {
    "after the customer's tokens, before the site's": (storage, "take_tokens", 2),
    "between two claims": (storage, "claim_address", 2),
    "after the claims, before the mail": (invites, "template_data", 1),
}


@pytest.mark.parametrize("where", list(BETWEEN))
def test_an_exception_between_two_steps_gives_everything_back(env, now, where):
    me, email = member(env)
    invited = friends(2)
    module, name, count = BETWEEN[where]
    # When our own code fails between two steps of the flow
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, _fail_on(count, getattr(module, name)))
        answer = env.call(SEND, {"a": invited}, me, email)
    # Then the client sees a generic internal error, no detail
    (error,) = answer["errors"]
    assert error["errorType"] == "InternalFailure" and error["message"] == "An internal error occurred"
    assert "injected" not in str(answer) and "Traceback" not in str(answer)
    # And nothing is half-done: nothing mailed, nothing spent, nothing claimed
    assert [mails_to(a) for a in invited] == [0, 0]
    assert spent_by(me, now) == (0, 0) and not any(claimed_by(me, a) for a in invited)
    # And the same request again sends both
    assert env.call(SEND, {"a": invited}, me, email) == {"data": {"sendReferralEmail": True}}
    assert [mails_to(a) for a in invited] == [1, 1]


@pytest.mark.parametrize("kind", ["internal", TLS, DROPPED])
def test_an_unconfirmed_send_is_counted(env, faults, now, capsys, kind):
    # Given SES answering a 5xx to the send of two friends, or the connection failing once the request may have gone
    # (a TLS error, the connection closed): tried once, never again
    me, email = member(env)
    invited = friends(2)
    faults.arm(1 + 2 + 2 + 1, kind)  # account, two buckets, two claims, the send
    capsys.readouterr()
    answer = env.call(SEND, {"a": invited}, me, email)
    faults.disarm()
    # Then both are reported unconfirmed, and the metric an operator alarms on counts them
    assert not_sent(answer) == dict.fromkeys(invited, "SEND_UNCONFIRMED")
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(entry.get("InvitesUnconfirmed") == [2.0] for entry in metrics), metrics


def test_ses_refusing_a_later_call_leaves_the_earlier_ones_standing(env, faults, now):
    # Given 60 friends (two SES calls: 50 + 10), and SES refusing the second call outright (AccessDenied)
    site = replace(DEFAULT_SITE, invites=replace(DEFAULT_SITE.invites, max_addresses_per_call=60, bucket_capacity=60))
    settings = replace(parse_settings("{}"), sites={"default": site})
    me, email = member(env)
    invited = friends(60)
    faults.arm(1 + 2 + 60 + 2, DENIED)
    outcome = invites.send_invites(settings, load_mail_settings(), Caller(me, email, "default"), invited)
    faults.disarm()
    # Then the first 50, mailed, keep their claims and tokens (asking again cannot mail them twice); the last 10
    # are reported, released and refunded
    assert len(outcome.sent) == 50 and [r for _, r in outcome.not_sent] == ["SEND_FAILED"] * 10
    assert [claimed_by(me, a) for a in invited] == [True] * 50 + [False] * 10
    assert spent(f"CUSTOMER#{me}", invite_bucket(60, site.invites.refill_per_day), now) == 50


def test_no_send_is_started_that_could_outlive_the_function(env, now):
    # Given a call with less time left than one SES send may take at its worst (3.5 s)
    me, email = member(env)
    invited = friends(2)
    settings = parse_settings("{}")
    # When it comes to the send, Then it is not made: every friend not sent, released and refunded
    with pytest.raises(errors.InvitationsNotSent) as raised:
        caller = Caller(me, email, "default")
        invites.send_invites(settings, load_mail_settings(), caller, invited, time_left=lambda: 2.0)
    assert [entry["reason"] for entry in raised.value.info["notSent"]] == ["SEND_FAILED"] * 2
    assert [mails_to(a) for a in invited] == [0, 0]
    assert not any(claimed_by(me, a) for a in invited) and spent_by(me, now) == (0, 0)


def test_a_throttled_send_is_not_tried_again_past_the_time_left(env, faults, now):
    # Given SES throttling the send, and 3.6 s left: one try fits (3.5 s at worst), a pause and a second do not
    me, email = member(env)
    invited = friends(2)
    faults.arm(1 + 2 + 2 + 1, "throttling")
    caller = Caller(me, email, "default")
    with pytest.raises(errors.InvitationsNotSent):
        invites.send_invites(parse_settings("{}"), load_mail_settings(), caller, invited, time_left=lambda: 3.6)
    faults.disarm()
    # Then SES was asked once, and the friends were given back (not sent: SES said it throttled the call)
    assert faults.injected == 1
    assert not any(claimed_by(me, a) for a in invited) and spent_by(me, now) == (0, 0)
