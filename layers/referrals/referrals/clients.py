"""Clients of the AWS services besides DynamoDB (EventBridge, SQS, AppSync, Cognito, SES): botocore's, one per service
and timeouts, made on first use in the store's region, with referrals.config.CLIENT_TIMEOUTS unless the caller gives
others (SES_TIMEOUTS, TRIGGER_TIMEOUTS). boto3 is not imported for them: it costs cold-start time."""

from __future__ import annotations

from functools import cache
from typing import Any

from referrals import storage
from referrals.config import CLIENT_TIMEOUTS, ClientTimeouts


@cache
def client(service: str, timeouts: ClientTimeouts = CLIENT_TIMEOUTS) -> Any:
    import botocore.session

    return botocore.session.get_session().create_client(
        service, region_name=storage.settings().region, config=timeouts.botocore_config()
    )
