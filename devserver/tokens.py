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


def _key(raw: str) -> Any:
    from joserfc.jwk import OctKey

    return OctKey.import_key(raw.encode())


def sign(claims: Any, key: str | None = None, header: dict[str, Any] | None = None) -> str:
    """A token with exactly these claims, HS256-signed with the local key (or `key`) by joserfc. With a `header`
    of its own (the drills forge `alg: none`, key confusion, which no library would sign) it is put together by
    hand, HMAC-SHA256-signed whatever the header says."""
    signing_key = secret() if key is None else key
    if header is None and isinstance(claims, dict) and signing_key:
        from joserfc import jwt

        return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, _key(signing_key))
    head = _b64(json.dumps(header if header is not None else {"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(signing_key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def verify(authorization: str | None, client: AppClient | None = None) -> dict[str, Any]:
    """The claims of a valid token, ID or access, of the API's app client; anything else (missing, forged,
    `alg: none`, expired, another client's) raises. joserfc checks the form, the algorithm (HS256 only) and the
    signature, then the expiry and the issuer when the token has them (the local contract lets a client sign its
    own token with just `sub` and `email`); the rest are Cognito's rules."""
    from joserfc import jwt
    from joserfc.errors import JoseError

    if not authorization:
        raise InvalidToken("missing")
    token = authorization.removeprefix("Bearer ").strip()
    try:
        decoded = jwt.decode(token, _key(secret()), algorithms=["HS256"])
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidToken(f"refused: {type(error).__name__}") from error
    claims = decoded.claims
    if not isinstance(claims, dict):
        raise InvalidToken("claims")
    try:
        # Tokens minted elsewhere may omit the issuer and the expiry; when present they must hold.
        jwt.JWTClaimsRegistry(iss={"value": ISSUER}).validate(claims)
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidToken(f"claims: {type(error).__name__}") from error
    expires = claims.get("exp")
    if expires is not None and (not isinstance(expires, int | float) or expires <= time.time()):
        raise InvalidToken("expired")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidToken("subject")
    # Cognito issues ID and access tokens, and AppSync's user-pool mode accepts both: an access token (no email)
    # reaches the resolver, and the function refuses it (functions/api/app.py). Anything else is no pool's token.
    if claims.get("token_use", "id") not in ("id", "access"):
        raise InvalidToken("token use")
    # As AppSync's AppIdClientRegex: only the storefront's app client, not any other client of the pool.
    if not (client or app_client()).accepts(claims):
        raise InvalidToken("client")
    return claims
