"""sendReferralEmail through the API function's handler on moto: SES templates, limits, cool-down, AWS calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devserver import outbox
from devserver.stack import REGION
from referrals import invites, mailer, storage
from referrals.config import DEFAULT_SITE, MailSettings, load_mail_settings, parse_settings
from referrals.customers import Caller
from referrals.errors import RateLimited
from referrals.ratelimit import first_attempt, invite_bucket, queued_attempt
from tests.conftest import load_event, new_id
from tests.integration.helpers import call_api, function, register

pytestmark = pytest.mark.usefixtures("aws_env")


def invite(customer_id: str, email: str, addresses: list[str]) -> dict:
    return call_api("send-referral-email.json", customer_id, email, arguments={"emailAddresses": addresses})


def member(name: str = "Alice Smith") -> tuple[str, str, str]:
    """A registered customer: (id, email, code)."""
    me = new_id()
    email = f"{me}@example.com"
    code = register(me, email, name)["data"]["customer"]["referralCode"]
    return me, email, code


def mail_to(address: str) -> list[dict]:
    return [m for m in outbox.sent() if m["to"] == [address]]


def test_the_sample_event_sends_one_templated_mail_per_friend():
    # Given the customer of the sample event has an account
    assert function("ApiFunction").invoke(load_event("register.json"))["data"]["newCustomer"] is True
    # When the sample sendReferralEmail event is invoked
    answer = function("ApiFunction").invoke(load_event("send-referral-email.json"))
    # Then it answers true and each friend got their own mail, rendered from the SES template
    assert answer == {"data": True}
    mails = outbox.sent()
    assert [m["to"] for m in mails] == [["bob@example.org"], ["Carol.Jones@example.net"]]
    code = function("ApiFunction").invoke(load_event("customer-query.json"))["data"]["referralCode"]
    for mail in mails:
        assert mail["from"] == "friends@shop.example.com"
        assert mail["subject"] == "Alice sent you 20% off your first order at Example Shop"
        assert f"https://shop.example.com/referrals.list?applyCode={code}" in mail["html"]
        assert f"https://shop.example.com/referrals.list?applyCode={code}" in mail["text"]


def test_aws_calls_for_an_admitted_call(calls):
    me, email, _ = member()
    calls.reset()
    assert invite(me, email, ["a@example.org", "b@example.org", "c@example.org"]) == {"data": True}
    # One read of the account, one write per bucket (customer, site), one cool-down claim per address,
    # one SES call for up to 50 addresses, and the programme's invitesSent (docs/programme.md).
    assert calls.count("dynamodb") == {"GetItem": 1, "UpdateItem": 2 + 3 + 1}
    assert calls.count("ses") == {"SendBulkTemplatedEmail": 1}


def test_aws_calls_for_a_part_spent_bucket_and_a_refusal(calls, monkeypatch):
    # One instant for every call: the site's bucket refills a token every 72 ms, which a slow run would see
    instant = datetime.now(UTC)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return instant

    monkeypatch.setattr(invites, "datetime", Frozen)
    me, email, _ = member()
    invite(me, email, [f"f{i}@example.org" for i in range(10)])
    # Part-spent buckets (the customer's, and the site's within the same second): for each, the fresh
    # write is refused and returns the stored TAT, and the queued one fits: one more request per bucket
    calls.reset()
    assert invite(me, email, [f"g{i}@example.org" for i in range(10)]) == {"data": True}
    assert calls.count("dynamodb") == {"GetItem": 1, "UpdateItem": 2 * 2 + 10 + 1}  # the last: invitesSent
    # An empty bucket: the account read and one refused write, nothing else
    calls.reset()
    answer = invite(me, email, ["h@example.org"])
    assert calls.count() == {"GetItem": 1, "UpdateItem": 1}
    assert answer["error"]["type"] == "RateLimited"


def test_the_limit_error_is_the_contracts():
    me, email, _ = member()
    assert invite(me, email, [f"f{i}@example.org" for i in range(10)]) == {"data": True}
    assert invite(me, email, [f"g{i}@example.org" for i in range(10)]) == {"data": True}
    answer = invite(me, email, ["one.more@example.org"])
    assert answer["error"]["message"] == "Rate limited: Please try again later"
    assert answer["error"]["type"] == "RateLimited"
    info = answer["error"]["info"]
    assert info["rateLimited"] is True and info["rateLimitingBucket"] == "REFERRAL_EMAIL"
    # One token a day / 20 = 72 minutes from now, give or take the test's own duration
    assert 72 * 60 - 60 <= info["retryAfterSeconds"] <= 72 * 60
    assert mail_to("one.more@example.org") == []


def test_invalid_input_spends_nothing_and_calls_nothing(calls):
    me, email, _ = member()
    calls.reset()
    answer = invite(me, email, ["ok@example.org", "evil@example.org\r\nBcc: all@example.org", email.upper()])
    assert calls.count() == {}
    assert answer["error"]["type"] == "InvalidEmailAddress"
    assert [p["reason"] for p in answer["error"]["info"]["invalidAddresses"]] == ["CONTROL_CHARACTERS", "OWN_ADDRESS"]
    too_many = invite(me, email, [f"x{i}@example.org" for i in range(11)])
    assert too_many["error"]["type"] == "TooManyEmailAddresses"
    assert calls.count() == {} and outbox.sent() == []
    # The whole bucket is still there: 20 addresses go out
    assert invite(me, email, [f"f{i}@example.org" for i in range(10)]) == {"data": True}
    assert invite(me, email, [f"g{i}@example.org" for i in range(10)]) == {"data": True}


def test_an_empty_list_sends_nothing_and_answers_true(calls):
    me, email, _ = member()
    calls.reset()
    assert invite(me, email, []) == {"data": True}
    assert calls.count() == {}


def test_a_caller_without_an_account_is_refused_without_spending(calls):
    calls.reset()
    answer = invite(new_id(), "nobody@example.com", ["friend@example.org"])
    assert answer["error"]["type"] == "NoAccount"
    assert calls.count() == {"GetItem": 1}
    assert outbox.sent() == []


def test_addresses_differing_only_in_case_get_one_mail():
    me, email, _ = member()
    assert invite(me, email, ["Dup@Example.org", "dup@example.org", "DUP@EXAMPLE.ORG"]) == {"data": True}
    assert [m["to"] for m in outbox.sent()] == [["Dup@example.org"]]


def test_forty_concurrent_calls_admit_exactly_the_capacity():
    me, email, _ = member()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: invite(me, email, [f"friend{i}@example.org"]), range(40)))
    admitted = [a for a in answers if a.get("data") is True]
    refused = [a for a in answers if a.get("error", {}).get("type") == "RateLimited"]
    assert len(admitted) == 20 and len(refused) == 20
    assert len(outbox.sent()) == 20


def test_someone_invited_recently_is_skipped_and_reported_not_mailed_again():
    first, first_email, _ = member("Ann A")
    second, second_email, _ = member("Ben B")
    assert invite(first, first_email, ["popular@example.org"]) == {"data": True}
    # When another customer invites the same friend (any case) and a new one
    answer = invite(second, second_email, ["Popular@Example.org", "fresh@example.org"])
    # Then true, with the skipped address reported beside it, and only the new friend mailed
    assert answer["data"] is True
    (warning,) = answer["warnings"]
    assert warning["type"] == "InvitationsNotSent"
    assert warning["info"]["notSent"] == [{"address": "Popular@Example.org", "reason": "RECENTLY_INVITED"}]
    assert len(mail_to("popular@example.org")) == 1 and len(mail_to("fresh@example.org")) == 1


def test_after_the_cooldown_a_friend_may_be_invited_again():
    me, email, _ = member()
    settings_ = parse_settings("{}")
    caller = Caller(me, email, "default")
    now = datetime.now(UTC)
    sent = invites.send_invites(settings_, load_mail_settings(), caller, ["later@example.org"], now=now)
    assert sent.sent == ["later@example.org"]
    early = invites.send_invites(
        settings_, load_mail_settings(), caller, ["later@example.org"], now=now + timedelta(days=29)
    )
    assert early.not_sent == [("later@example.org", "RECENTLY_INVITED")]
    later = invites.send_invites(
        settings_, load_mail_settings(), caller, ["later@example.org"], now=now + timedelta(days=31)
    )
    assert later.sent == ["later@example.org"]
    assert len(mail_to("later@example.org")) == 2


def test_bounces_and_complaints_put_addresses_on_the_suppression_list():
    # Given SES reported a hard bounce and a complaint (the sample events), each delivered twice
    mail_events = function("MailEventsFunction")
    for sample in ("ses-bounce.json", "ses-complaint.json"):
        assert mail_events.invoke(load_event(sample)) == {"suppressed": 1}
        assert mail_events.invoke(load_event(sample)) == {"suppressed": 1}
    soft = load_event("ses-bounce.json")
    soft["detail"]["bounce"]["bounceType"] = "Transient"
    soft["detail"]["bounce"]["bouncedRecipients"] = [{"emailAddress": "full.mailbox@example.org"}]
    assert mail_events.invoke(soft) == {"suppressed": 0}
    # When a customer invites them, even long after
    me, email, _ = member()
    caller = Caller(me, email, "default")
    later = datetime.now(UTC) + timedelta(days=400)
    outcome = invites.send_invites(
        parse_settings("{}"),
        load_mail_settings(),
        caller,
        ["Gone@example.org", "annoyed@example.org", "full.mailbox@example.org"],
        now=later,
    )
    # Then the suppressed ones are skipped and reported; the soft bounce is mailed
    assert outcome.not_sent == [("Gone@example.org", "SUPPRESSED"), ("annoyed@example.org", "SUPPRESSED")]
    assert outcome.sent == ["full.mailbox@example.org"]
    assert mail_to("gone@example.org") == [] and mail_to("annoyed@example.org") == []


def test_a_partial_ses_failure_is_reported_refunded_and_released(monkeypatch):
    me, email, _ = member()

    # Given SES refuses the second destination (as SES reports it per destination)
    def refuse_second(parsed, **_):
        parsed["Status"][1] = {"Status": "MessageRejected", "Error": "Email address is not verified."}

    client = mailer._ses()
    client.meta.events.register("after-call.ses.SendBulkTemplatedEmail", refuse_second)
    try:
        answer = invite(me, email, ["one@example.org", "two@example.org", "three@example.org"])
    finally:
        client.meta.events.unregister("after-call.ses.SendBulkTemplatedEmail", refuse_second)
    # Then true, with the refused address reported
    assert answer["data"] is True
    assert answer["warnings"][0]["info"]["notSent"] == [{"address": "two@example.org", "reason": "SEND_FAILED"}]
    # And its token came back: 18 more addresses fit today, not 17 + 1
    assert invite(me, email, [f"f{i}@example.org" for i in range(10)]) == {"data": True}
    assert invite(me, email, [f"g{i}@example.org" for i in range(7)] + ["two@example.org"]) == {"data": True}
    assert invite(me, email, ["h@example.org"])["error"]["type"] == "RateLimited"


def test_when_ses_refuses_everything_the_call_fails_and_spends_nothing():
    me, email, _ = member()
    ses = boto3.client("ses", region_name=REGION)
    ses.delete_identity(Identity="friends@shop.example.com")  # moto then rejects the whole call
    answer = invite(me, email, ["a@example.org", "b@example.org"])
    # An unverified sender is the deployment's fault, not the friends': refused (docs/faults.md), no detail
    assert answer["error"]["type"] == "InternalFailure"
    ses.verify_email_identity(EmailAddress="friends@shop.example.com")
    # Nothing was spent and nobody is cooling down: the same friends, then the rest of the bucket
    assert invite(me, email, ["a@example.org", "b@example.org"]) == {"data": True}
    assert invite(me, email, [f"f{i}@example.org" for i in range(10)]) == {"data": True}
    assert invite(me, email, [f"g{i}@example.org" for i in range(8)]) == {"data": True}


def test_one_ses_call_per_fifty_addresses(calls):
    # Given a site that allows 60 addresses a call
    site = replace(DEFAULT_SITE, invites=replace(DEFAULT_SITE.invites, max_addresses_per_call=60, bucket_capacity=60))
    settings_ = replace(parse_settings("{}"), sites={"default": site})
    me, email, _ = member()
    calls.reset()
    # When a customer invites 51 friends
    outcome = invites.send_invites(
        settings_, load_mail_settings(), Caller(me, email, "default"), [f"n{i}@example.org" for i in range(51)]
    )
    # Then two SES calls (50 + 1) carry one message each
    assert len(outcome.sent) == 51
    assert calls.count("ses") == {"SendBulkTemplatedEmail": 2}
    assert len(outbox.sent()) == 51


def test_names_are_escaped_in_the_mail_and_cannot_inject_headers():
    # Given a referrer whose stored first name carries markup and, somehow, a line break
    me, email, _ = member("<b>Bob</b> Builder")
    item = storage.CustomerItem.get(me)
    item.update(actions=[storage.CustomerItem.first_name.set("<b>Bob</b>\r\nBcc: all@example.org")])
    assert invite(me, email, ["friend.of.bob@example.org"]) == {"data": True}
    (mail,) = mail_to("friend.of.bob@example.org")
    # Then the HTML shows the markup as text, and the subject is one line
    assert "&lt;b&gt;Bob&lt;/b&gt;" in mail["html"] and "<b>Bob</b>" not in mail["html"]
    assert "\r" not in mail["subject"] and "\n" not in mail["subject"]
    assert mail["subject"].startswith("<b>Bob</b>Bcc: all@example.org sent you")


def test_buckets_and_claims_expire_by_ttl_and_suppressions_do_not():
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    ttl = dynamodb.describe_time_to_live(TableName="InvitesTable")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expiresAt" and ttl["TimeToLiveStatus"] == "ENABLED"
    me, email, _ = member()
    invite(me, email, ["ttl@example.org"])
    bucket = storage.BucketItem.get(f"BUCKET#CUSTOMER#{me}")
    assert bucket.expires_at is not None and bucket.expires_at > datetime.now(UTC).timestamp()
    function("MailEventsFunction").invoke(load_event("ses-bounce.json"))
    items = [
        storage.AddressItem.get(storage.AddressItem.key_for("default", h))
        for h in (invites.emails.identity_hash("ttl@example.org"), invites.emails.identity_hash("gone@example.org"))
    ]
    assert items[0].expires_at is not None and items[0].suppressed_at is None
    assert items[1].expires_at is None and items[1].suppressed_reason == "BOUNCE"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stored=st.one_of(st.none(), st.integers(min_value=-200_000_000, max_value=200_000_000)),
    cost=st.integers(min_value=1, max_value=20),
    fresh=st.booleans(),
)
def test_dynamodb_evaluates_each_bucket_write_as_the_model_says(stored, cost, fresh):
    # Given a bucket item holding `stored` (relative to now), or none
    bucket = invite_bucket(20, 20)
    now = 1_764_000_000_000
    key = f"TEST#{new_id()}"
    if stored is not None:
        storage.BucketItem(f"BUCKET#{key}", tat=now + stored).save()
    step = first_attempt(bucket, now, cost)
    if not fresh:  # a compare-and-set from what a refusal showed (the stored TAT, or another one)
        step = queued_attempt(bucket, now, cost, now + (stored if stored is not None and stored % 2 else 1_000))
    # When storage runs the write
    written, seen = storage.bucket_write(key, step, bucket.expires_at(now))
    # Then DynamoDB agreed with the model on whether it holds, what it leaves, and what it returns
    before = None if stored is None else now + stored
    assert written == step.holds(before)
    after = storage.BucketItem.get(f"BUCKET#{key}").tat if (written or stored is not None) else None
    assert after == (step.apply(before) if written else before)
    assert seen == (None if written else before)


def test_a_site_over_its_ses_rate_is_limited_and_the_customer_keeps_their_tokens():
    # Given a site allowed 1 send a second with a 10 second burst, already used up
    site = replace(DEFAULT_SITE, invites=replace(DEFAULT_SITE.invites, site_sends_per_second=1, site_burst_seconds=10))
    settings_ = replace(parse_settings("{}"), sites={"default": site})
    mail = MailSettings(template_prefix=load_mail_settings().template_prefix)
    first, first_email, _ = member()
    now = datetime.now(UTC)
    invites.send_invites(
        settings_, mail, Caller(first, first_email, "default"), [f"s{i}@x.org" for i in range(10)], now=now
    )
    second, second_email, _ = member()
    # When another customer invites in the same second
    with pytest.raises(RateLimited) as limited:
        invites.send_invites(settings_, mail, Caller(second, second_email, "default"), ["t@x.org"], now=now)
    assert limited.value.info["rateLimitingBucket"] == "REFERRAL_EMAIL"
    assert limited.value.info["retryAfterSeconds"] == 1
    # Then their own bucket is untouched: the whole capacity is theirs a minute later
    later = now + timedelta(minutes=1)
    outcome = invites.send_invites(
        replace(settings_, sites={"default": DEFAULT_SITE}),
        mail,
        Caller(second, second_email, "default"),
        [f"u{i}@x.org" for i in range(10)],
        now=later,
    )
    assert len(outcome.sent) == 10
    more = invites.send_invites(
        replace(settings_, sites={"default": DEFAULT_SITE}),
        mail,
        Caller(second, second_email, "default"),
        [f"v{i}@x.org" for i in range(10)],
        now=later,
    )
    assert len(more.sent) == 10
