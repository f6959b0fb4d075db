"""Domain exceptions. The API adapter maps each to a typed GraphQL error in one place."""

from __future__ import annotations

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
