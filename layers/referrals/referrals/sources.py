"""Where a request came from: the one place that picks the caller's address out of what AppSync hands a function.
The sign-up velocity check (referrals.abuse) and the public lookup's limit (referrals.offers) both count by it.

AppSync gives two lists, and in both only the right end is written by someone we trust:

- `identity.sourceIp` (a signed-in customer, an IAM-signed server): the addresses of the request's
  X-Forwarded-For header, if it had one, followed by the address of the TCP connection AppSync accepted (AppSync's
  resolver context reference). The last is AppSync's own record; everything before it is what the caller wrote,
  so a client can put a fresh address there on every request.
- With the API key the identity is null, and the address is read from X-Forwarded-For as AppSync passes it on in
  `request.headers`: AppSync's edge (CloudFront) appends the address it was reached from, and then its own.

Each proxy of ours in front of AppSync (`TRUSTED_PROXY_HOPS`; CloudFront: 1) appends the address it was reached
from and then connects from its own, so the caller is that many further from the right. Trusting a proxy is safe
only if AppSync cannot be reached around it (docs/threat-model.md).
"""

from __future__ import annotations

from typing import Any

# AppSync's edge appends the viewer's address and then its own to X-Forwarded-For: the header's last hop is its.
APPSYNC_EDGE_HOPS = 1


def source_address(source_ips: Any, forwarded_for: Any, trusted_proxy_hops: int) -> str | None:
    """The caller's address: from `identity.sourceIp` when there is an identity, else from X-Forwarded-For.

    Counted from the right, past the hops we trust and no further: a list shorter than that (a request that
    came around the proxies) gives its first element, never one from beyond the trusted end."""
    if isinstance(source_ips, list) and source_ips:
        return _from_the_right(source_ips, trusted_proxy_hops)
    if isinstance(forwarded_for, str):
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            return _from_the_right(hops, APPSYNC_EDGE_HOPS + trusted_proxy_hops)
    return None


def _from_the_right(addresses: list[Any], skipped: int) -> str | None:
    chosen = addresses[max(0, len(addresses) - 1 - max(0, skipped))]
    return chosen.strip() if isinstance(chosen, str) and chosen.strip() else None
