"""The only module that talks to SES: invites as SES v1 bulk templated sends.

Why SES v1 (`SendBulkTemplatedEmail`) and not v2 (`SendBulkEmail`): both send one personalised message
per destination from a stored template, up to 50 destinations a call, with per-destination status. v1
is what moto implements (its v2 templated and bulk sends raise NotImplementedError), so v1 is the call
our tests exercise for real; templates (`AWS::SES::Template`) and configuration sets are shared by both
APIs, so moving to v2 later changes this module only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from referrals.config import MailSettings, Site
from referrals.storage.client import RETRYABLE, classify, error_code, refusal

BULK_LIMIT = 50  # SES: at most 50 destinations per SendBulkTemplatedEmail

_client: Any = None


def _ses() -> Any:
    global _client
    if _client is None:
        import boto3

        from referrals.config import CLIENT_TIMEOUTS

        _client = boto3.client("ses", config=CLIENT_TIMEOUTS.botocore_config())
    return _client


@dataclass(frozen=True)
class Delivery:
    """What SES said for one destination: `error` is None when it accepted the message."""

    address: str
    error: str | None
    message_id: str | None = None


def send_bulk(mail: MailSettings, site: Site, template_data: dict[str, str], addresses: list[str]) -> list[Delivery]:
    """One message per address (friends never see each other), one SES call per 50 addresses.

    Nothing is dropped silently: a call that failed after botocore's retries (throttling, 5xx, a timeout) marks
    its whole chunk failed, and each destination's own status is reported back. A call SES refused outright
    (AccessDenied, a missing template, an unverified sender) raises errors.Refused.
    """
    deliveries: list[Delivery] = []
    for start in range(0, len(addresses), BULK_LIMIT):
        chunk = addresses[start : start + BULK_LIMIT]
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
            answer = _ses().send_bulk_templated_email(**request)
        except (BotoCoreError, ClientError) as error:  # botocore already retried throttling
            if classify(error) != RETRYABLE:
                # Access denied, a missing template or sender: our fault, not the friends'. Raised (logged once),
                # so the caller gives back what it took and answers an internal failure, never "not sent".
                raise refusal(error, "SES", "SendBulkTemplatedEmail") from error
            # Throttling, 5xx, a timeout: report every address, drop none
            deliveries.extend(Delivery(address, error_code(error)) for address in chunk)
            continue
        statuses = answer.get("Status") or []
        for index, address in enumerate(chunk):
            status = statuses[index] if index < len(statuses) else {}
            # SES says "Success"; moto leaves Status out and gives only the MessageId.
            accepted = status.get("Status", "Success") == "Success" and bool(status.get("MessageId"))
            deliveries.append(
                Delivery(address, None if accepted else (status.get("Status") or "Failed"), status.get("MessageId"))
            )
    return deliveries
