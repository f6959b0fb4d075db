"""Local identity tokens: HS256 JWTs that stand in for the Cognito user pool's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any

DEFAULT_SECRET = "local-dev-secret"  # noqa: S105 - the documented local-only default
ISSUER = "https://cognito-idp.local/referrals-local"
AUDIENCE = "referrals-local-client"


class InvalidToken(Exception):
    pass


def secret() -> str:
    return os.environ.get("REFERRALS_LOCAL_JWT_SECRET", DEFAULT_SECRET)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(sub: str, email: str, site: str | None = None, ttl_seconds: int = 3600, key: str | None = None) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "email": email,
        "iss": ISSUER,
        "iat": now,
        "exp": now + ttl_seconds,
        "token_use": "id",
        "cognito:username": sub,
    }
    if site:
        claims["custom:site"] = site
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new((key or secret()).encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def verify(authorization: str | None) -> dict[str, Any]:
    """The claims of a valid token, ID or access; anything else (missing, forged, `alg: none`, expired) raises."""
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
    # Tokens minted elsewhere may omit these; when present they must be this pool's and this client's.
    if "iss" in claims and claims["iss"] != ISSUER:
        raise InvalidToken("issuer")
    if "aud" in claims and claims["aud"] != AUDIENCE:
        raise InvalidToken("audience")
    # Cognito issues ID and access tokens, and AppSync's user-pool mode accepts both: an access token (no email)
    # reaches the resolver, and the function refuses it (functions/api/app.py). Anything else is no pool's token.
    if claims.get("token_use", "id") not in ("id", "access"):
        raise InvalidToken("token use")
    return claims
