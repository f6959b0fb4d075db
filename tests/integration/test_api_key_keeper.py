"""The public API key never lapses: ApiKeyKeeperFunction moves its expiry a year ahead (docs/operations.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from devserver.lambdas import LocalFunction
from devserver.stack import PHYSICAL, REGION

pytestmark = pytest.mark.usefixtures("aws_env")


def _expires(appsync) -> datetime:
    api_id = PHYSICAL[("GraphQLApi", "ApiId")]
    (key,) = appsync.list_api_keys(apiId=api_id)["apiKeys"]
    assert key["id"] == PHYSICAL[("PublicApiKey", "ApiKeyId")]
    return datetime.fromtimestamp(key["expires"], UTC)


def test_the_keeper_moves_the_public_keys_expiry_a_year_ahead(aws_env):
    appsync = boto3.client("appsync", region_name=REGION)
    # Given the public key as the stack creates it: AppSync's 7 days
    assert _expires(appsync) < datetime.now(UTC) + timedelta(days=8)
    # When the keeper runs, under its own role (local IAM: appsync:UpdateApiKey on the API and the key)
    answer = LocalFunction(aws_env.functions()["ApiKeyKeeperFunction"]).invoke({})
    # Then the key lasts a year less a day, on the hour, as AppSync keeps it; and running again changes nothing
    # but the start of that year
    expires = _expires(appsync)
    assert answer == {"expires": int(expires.timestamp())}
    assert timedelta(days=363) < expires - datetime.now(UTC) <= timedelta(days=364)
    assert expires.minute == expires.second == 0
