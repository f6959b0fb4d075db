"""Local IAM callers: what stands in for a SigV4-signed request to AppSync (AWS_IAM, an additional provider).

On AWS a server signs its request with its role's credentials and AppSync hands the resolver an IAM identity.
Locally a request that carries the header `x-local-iam: <REFERRALS_LOCAL_IAM_KEY>` (default `local-iam-key`)
is taken as signed by the role below; it may call only fields marked `@aws_iam`, as on AWS. See docs/local.md.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from devserver.stack import ACCOUNT

HEADER = "x-local-iam"
DEFAULT_KEY = "local-iam-key"
ROLE = "ReferralsLocalIamCaller"


class InvalidSignature(Exception):
    pass


def key() -> str:
    return os.environ.get("REFERRALS_LOCAL_IAM_KEY", DEFAULT_KEY)


def identity(given: str | None, source_ip: str) -> dict[str, Any] | None:
    """The IAM identity AppSync would give a signed request; None when the request does not claim to be one.

    A wrong key is refused, as a bad signature is: it never falls back to another provider.
    """
    if given is None:
        return None
    if not given or not hmac.compare_digest(given.encode(), key().encode()):
        raise InvalidSignature()
    return {
        "accountId": ACCOUNT,
        "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/local",
        "username": "AROALOCALIAMCALLER:local",
        "sourceIp": [source_ip],
        "cognitoIdentityPoolId": None,
        "cognitoIdentityId": None,
        "cognitoIdentityAuthType": None,
        "cognitoIdentityAuthProvider": None,
    }
