"""Local identity tokens: HS256 JWTs that stand in for the Cognito user pool's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from devserver.stack import Stack

DEFAULT_SECRET = "local-dev-secret"  # noqa: S105 - the documented local-only default
ISSUER = "https://cognito-idp.local/referrals-local"


class InvalidToken(Exception):
    pass


def secret() -> str:
    return os.environ.get("REFERRALS_LOCAL_JWT_SECRET", DEFAULT_SECRET)


@dataclass(frozen=True)
class AppClient:
    """The user pool's app client the API accepts, as template.yaml declares it: the id its tokens carry (`aud` in
    an ID token, `client_id` in an access token) and the GraphQL API's UserPoolConfig AppIdClientRegex."""

    client_id: str
    regex: str

    @classmethod
    def of(cls, stack: Stack) -> AppClient:
        regex = stack.api_settings().get("UserPoolConfig", {}).get("AppIdClientRegex") or ""
        return cls(str(stack.resolve(stack.document["Outputs"]["StorefrontClientId"]["Value"])), regex)

    def accepts(self, claims: dict[str, Any]) -> bool:
        """AppSync's check: the token's client id matches the regex, whole (an empty regex filters nothing).

        One local allowance: an ID token with no `aud` at all passes, because the local contract lets a client
        sign its own token with just `sub` and `email` (../shared/CONTRACT.md). Cognito always writes `aud`; a
        token that has one, and every access token (`client_id`), must name the storefront's client."""
        if not self.regex:
            return True
        access = claims.get("token_use") == "access"
        if not access and "aud" not in claims:
            return True
        value = claims.get("client_id" if access else "aud")
        return isinstance(value, str) and re.fullmatch(self.regex, value) is not None


@cache
def app_client() -> AppClient:
    """The app client of template.yaml with its default parameters (locally `StorefrontClient`)."""
    return AppClient.of(Stack())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(
    sub: str,
    email: str,
    site: str | None = None,
    ttl_seconds: int = 3600,
    key: str | None = None,
    client: AppClient | None = None,
) -> str:
    """An ID token of the API's app client, as Cognito issues one when a customer signs in with it."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "email": email,
        "iss": ISSUER,
        "aud": (client or app_client()).client_id,
        "iat": now,
        "exp": now + ttl_seconds,
        "token_use": "id",
        "cognito:username": sub,
    }
    if site:
        claims["custom:site"] = site
    return sign(claims, key)


def sign(claims: Any, key: str | None = None, header: dict[str, Any] | None = None) -> str:
    """A token with exactly these claims, HMAC-SHA256-signed with the local key (or `key`); its header says HS256
    unless `header` says otherwise (the drills forge headers: `alg: none`, key confusion)."""
    header = _b64(json.dumps(header if header is not None else {"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signing_key = secret() if key is None else key
    signature = hmac.new(signing_key.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def verify(authorization: str | None, client: AppClient | None = None) -> dict[str, Any]:
    """The claims of a valid token, ID or access, of the API's app client; anything else (missing, forged,
    `alg: none`, expired, another client's) raises."""
    if not authorization:
        raise InvalidToken("missing")
    token = authorization.removeprefix("Bearer ").strip()
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except ValueError as error:
        raise InvalidToken("malformed") from error
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise InvalidToken("algorithm")
    expected = hmac.new(secret().encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidToken("signature")
    expires = claims.get("exp")
    if expires is not None and (not isinstance(expires, int | float) or expires <= time.time()):
        raise InvalidToken("expired")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidToken("subject")
    # Tokens minted elsewhere may omit the issuer; when present it must be this pool's.
    if "iss" in claims and claims["iss"] != ISSUER:
        raise InvalidToken("issuer")
    # Cognito issues ID and access tokens, and AppSync's user-pool mode accepts both: an access token (no email)
    # reaches the resolver, and the function refuses it (functions/api/app.py). Anything else is no pool's token.
    if claims.get("token_use", "id") not in ("id", "access"):
        raise InvalidToken("token use")
    # As AppSync's AppIdClientRegex: only the storefront's app client, not any other client of the pool.
    if not (client or app_client()).accepts(claims):
        raise InvalidToken("client")
    return claims
