"""Domain exceptions. The API adapter maps each to a typed GraphQL error in one place."""

from __future__ import annotations

import json
from typing import Any


class ReferralError(Exception):
    """Base of every error a client may see; `code` becomes the GraphQL errorType."""

    code = "ReferralError"

    def __init__(self, message: str, info: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.info = info or {}


class InvalidInput(ReferralError):
    """An argument failed validation; `info` names the field and the reason."""

    code = "ValidationError"

    def __init__(self, field: str, reason: str, message: str, **extra: Any) -> None:
        super().__init__(message, {"field": field, "reason": reason, **extra})


class NoAccount(ReferralError):
    code = "NoAccount"

    def __init__(self) -> None:
        super().__init__("The signed-in customer has no account yet: register first")


class UnknownSite(ReferralError):
    code = "UnknownSite"

    def __init__(self, site: str) -> None:
        super().__init__(f"Site '{site}' is not configured")


class RateLimited(ReferralError):
    code = "RateLimited"

    def __init__(self, bucket: str, retry_after_seconds: int) -> None:
        super().__init__(
            "Rate limited: Please try again later",
            {
                "rateLimited": True,
                "rateLimitingBucket": bucket,
                "retryAfterSeconds": retry_after_seconds,
            },
        )


class Busy(ReferralError):
    """The store kept refusing (throttling or contention) after our retries."""

    code = "ServiceBusy"

    def __init__(self) -> None:
        super().__init__("The service is busy: please try again shortly")


def _quoted(address: str) -> str:
    """An address as the client sent it, JSON-quoted so control characters show as escapes, not as line breaks."""
    return json.dumps(address)


class InvalidEmailAddresses(ReferralError):
    """One or more addresses cannot be mailed; `info.invalidAddresses` gives each with its reason."""

    code = "InvalidEmailAddress"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(
            "Invalid email addresses: " + ", ".join(_quoted(address) for address, _ in problems),
            {"field": "emailAddresses", "invalidAddresses": [{"address": a, "reason": r} for a, r in problems]},
        )


class TooManyEmailAddresses(ReferralError):
    code = "TooManyEmailAddresses"

    def __init__(self, given: int, limit: int, problems: list[tuple[str, str]]) -> None:
        message = f"Too many email addresses: {given} given, at most {limit} per call"
        if problems:
            message += "; invalid: " + ", ".join(_quoted(address) for address, _ in problems)
        super().__init__(
            message,
            {
                "field": "emailAddresses",
                "maxAddresses": limit,
                "given": given,
                "invalidAddresses": [{"address": a, "reason": r} for a, r in problems],
            },
        )


class InvitationsNotSent(ReferralError):
    """Some (or all) invites were not mailed: skipped (recently invited, suppressed) or refused by SES.

    When at least one invite went out it travels as a warning beside `true`; when none could be sent
    because SES refused them all, it is the call's error.
    """

    code = "InvitationsNotSent"

    def __init__(self, skipped: list[tuple[str, str]]) -> None:
        super().__init__(
            "Some invitations were not sent: " + ", ".join(f"{_quoted(a)} ({r})" for a, r in skipped),
            {"notSent": [{"address": a, "reason": r} for a, r in skipped]},
        )


class ProgrammeDisabled(ReferralError):
    code = "ReferralProgrammeDisabled"

    def __init__(self) -> None:
        super().__init__("The referral programme is not running on this site")


# Review of flagged referrals (rewards.review_referral; docs/rewards.md, "Review").


class ReferralNotFound(ReferralError):
    code = "ReferralNotFound"

    def __init__(self) -> None:
        super().__init__("No referral brought this customer", {"field": "refereeId", "reason": "NOT_FOUND"})


class NotUnderReview(ReferralError):
    code = "NotUnderReview"

    def __init__(self) -> None:
        super().__init__("This referral was never flagged for review", {"field": "refereeId", "reason": "NOT_FLAGGED"})


class AlreadyReviewed(ReferralError):
    code = "AlreadyReviewed"

    def __init__(self, review: str) -> None:
        super().__init__(f"This referral was already reviewed: {review}", {"review": review})


class Refused(Exception):
    """AWS refused a request outright (access denied, invalid, no such table or template, ...): a fault in the
    deployment or in our code, never contention, so never retried and never answered as `Busy`. Carries what
    the logs may show (the service, the operation and AWS's error code), never the request or its values.
    Not a ReferralError: the adapter answers it as an internal failure with no detail (graphql_adapter)."""

    def __init__(self, service: str, operation: str, code: str) -> None:
        super().__init__(f"{service} refused {operation}: {code}")
        self.service = service
        self.operation = operation
        self.code = code
