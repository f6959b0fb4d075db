"""The only module that talks to SES: invites as SES v1 bulk templated sends.

Why SES v1 (`SendBulkTemplatedEmail`) and not v2 (`SendBulkEmail`): both send one personalised message
per destination from a stored template, up to 50 destinations a call, with per-destination status. v1
is what moto implements (its v2 templated and bulk sends raise NotImplementedError), so v1 is the call
our tests exercise for real; templates (`AWS::SES::Template`) and configuration sets are shared by both
APIs, so moving to v2 later changes this module only.

A send is not idempotent (SES takes no token), so it is sent at most once: the SES client makes one attempt
(`SES_TIMEOUTS`), and this module asks again only when SES cannot have sent anything: no connection was made
(DNS, TCP connect), or SES answered that it throttled the call. Anything else that may follow a send (a read
timeout, a TLS or connection error once connected, a 5xx, an answer botocore cannot read) leaves the call's
destinations UNCONFIRMED: the caller keeps their cool-down claims and tokens, so asking again cannot mail a friend
twice (docs/invites.md, "When SES fails").
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)

from referrals import clients
from referrals.config import SES_TIMEOUTS, MailSettings, Site
from referrals.errors import Refused
from referrals.storage.client import error_code, refusal

BULK_LIMIT = 50  # SES: at most 50 destinations per SendBulkTemplatedEmail
# Tries of one call when SES cannot have sent it (not connected, throttled), with jittered backoff between: SES
# counts its sending rate per second, so the waits are a good part of one (0.25-0.5 s, then 0.5-1 s).
SEND_ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
# SES's answers that say nothing was sent: its sending rate or daily quota (`Throttling`), or the API's rate.
THROTTLED = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})
# botocore errors raised before a request leaves: our setup's fault, refused like a 4xx.
_BEFORE_SENDING = (ParamValidationError, NoCredentialsError, PartialCredentialsError)


def _ses() -> Any:
    return clients.client("ses", SES_TIMEOUTS)  # one attempt: a send is never repeated by botocore


class Sent(StrEnum):
    ACCEPTED = "ACCEPTED"  # SES took the message for this destination
    REFUSED = "REFUSED"  # not sent: SES said so (per destination, or throttled to the end), or never asked
    UNCONFIRMED = "UNCONFIRMED"  # no answer that says either: it may have gone out


@dataclass(frozen=True)
class Delivery:
    """What SES said for one destination."""

    address: str
    outcome: Sent
    reason: str | None = None  # SES's status or error code, when not ACCEPTED
    message_id: str | None = None


def _not_sent(error: BaseException) -> bool:
    """SES cannot have sent anything: no connection was made (name lookup, TCP connect), or it answered that it
    throttled the call. Not TLS or proxy errors: they can come after the request went."""
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        return True
    return isinstance(error, ClientError) and error_code(error) in THROTTLED


def _refused(error: BaseException) -> bool:
    """SES (or botocore, before sending) refused the request as it stands: access, a missing template or sender,
    a bad parameter, no credentials. Nothing was sent, and asking again would be refused again."""
    if isinstance(error, ClientError):
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400) < 500
    return isinstance(error, _BEFORE_SENDING)


def _send_chunk(request: dict[str, Any], chunk: list[str], time_left: Callable[[], float]) -> list[Delivery]:
    attempt = 1
    while True:
        try:
            answer = _ses().send_bulk_templated_email(**request)
        except Exception as error:  # whatever it is, what SES may have done decides
            pause = random.uniform(BACKOFF_SECONDS, 2 * BACKOFF_SECONDS) * 2 ** (attempt - 2)
            another = attempt < SEND_ATTEMPTS and time_left() > pause + SES_TIMEOUTS.worst_case_seconds
            if _not_sent(error) and another:
                time.sleep(pause)
                attempt += 1
                continue
            if _not_sent(error):
                return [Delivery(address, Sent.REFUSED, error_code(error)) for address in chunk]
            if _refused(error):
                # Access denied, a missing template or sender: our fault, not the friends'. Raised (logged once),
                # so the caller gives back what it took and answers an internal failure, never "not sent".
                raise refusal(error, "SES", "SendBulkTemplatedEmail") from error
            # A read timeout, a TLS or connection error once connected, a 5xx, an unreadable answer: maybe sent.
            return [Delivery(address, Sent.UNCONFIRMED, error_code(error)) for address in chunk]
        return _statuses(answer, chunk)


def _statuses(answer: dict[str, Any], chunk: list[str]) -> list[Delivery]:
    """Each destination as SES reported it, in the order sent; one it said nothing of is UNCONFIRMED."""
    statuses = answer.get("Status") or []
    deliveries = []
    for index, address in enumerate(chunk):
        status = statuses[index] if index < len(statuses) else {}
        said = status.get("Status")
        if said in (None, "Success") and status.get("MessageId"):  # moto gives the MessageId alone
            deliveries.append(Delivery(address, Sent.ACCEPTED, None, status["MessageId"]))
        elif said in (None, "Success"):
            deliveries.append(Delivery(address, Sent.UNCONFIRMED, "NoStatus"))
        else:
            deliveries.append(Delivery(address, Sent.REFUSED, said))
    return deliveries


def send_bulk(
    mail: MailSettings,
    site: Site,
    template_data: dict[str, str],
    addresses: list[str],
    time_left: Callable[[], float] = lambda: float("inf"),
) -> list[Delivery]:
    """One message per address (friends never see each other), one SES call per 50 addresses; a call SES cannot
    have acted on (not connected, throttled) is made again, up to SEND_ATTEMPTS times, and no other.

    Every address comes back ACCEPTED, REFUSED (SES said so, per destination or by throttling every try; or never
    asked, when `time_left()`, in seconds, no longer holds a call at its worst) or UNCONFIRMED (a timeout or a 5xx:
    it may have gone out). When SES refuses the first call outright (AccessDenied, a missing template, an
    unverified sender) this raises errors.Refused; when it refuses a later one, the earlier calls' deliveries stand
    and the rest come back REFUSED (the refusal is logged where it happened).
    """
    deliveries: list[Delivery] = []
    for start in range(0, len(addresses), BULK_LIMIT):
        chunk = addresses[start : start + BULK_LIMIT]
        if time_left() < SES_TIMEOUTS.worst_case_seconds:
            # Started now, a call that hangs would outlive the function, and what it did would never be known.
            deliveries.extend(Delivery(address, Sent.REFUSED, "OutOfTime") for address in addresses[start:])
            break
        request: dict[str, Any] = {
            "Source": site.sender,
            "Template": mail.template_name(site),
            "DefaultTemplateData": json.dumps(template_data),
            # The site tag lets the bounce and complaint handler find the right suppression list.
            "DefaultTags": [{"Name": "site", "Value": site.key}, {"Name": "kind", "Value": "invite"}],
            "Destinations": [{"Destination": {"ToAddresses": [address]}} for address in chunk],
        }
        if mail.configuration_set:
            request["ConfigurationSetName"] = mail.configuration_set
        try:
            deliveries.extend(_send_chunk(request, chunk, time_left))
        except Refused as refused:
            if not deliveries:
                raise
            deliveries.extend(Delivery(address, Sent.REFUSED, refused.code) for address in addresses[start:])
            break
    return deliveries
