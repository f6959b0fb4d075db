"""The browser side of the local stand-in: the console at `/`, the reference landing page at
`/referrals.list`, their static files under `/assets/`, and `GET /_local/config` (what the pages
need to call the API). Plain files from `devserver/console/`: no build step, nothing from outside.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

FILES = Path(__file__).resolve().parent / "console"
DEFAULT_API_KEY = "local-api-key"  # the documented local-only default (docs/local.md)

PAGES = {"/": "index.html", "/referrals.list": "landing.html"}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Scripts only from this server. Inline styles are allowed because an email shown in the outbox
# (a sandboxed srcdoc frame inherits this policy) is styled inline; images only local or data:,
# so a mail cannot make the browser reach the internet.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # edits to the files show on reload
}


def api_key() -> str:
    return os.environ.get("REFERRALS_LOCAL_API_KEY", DEFAULT_API_KEY)


def config() -> dict[str, Any]:
    """What a page needs to call the API; on a storefront this comes from its own configuration. `sites`: the
    configured site keys, for the console's choice of site."""
    from referrals.config import parse_settings

    sites = sorted(parse_settings(os.environ.get("SITES_CONFIG")).sites)
    return {"graphqlUrl": "/graphql", "apiKey": api_key(), "sites": sites}


def _file(path: str) -> Path | None:
    """The file a GET path names, if it is one of ours; no other path on disk is reachable."""
    if path in PAGES:
        return FILES / PAGES[path]
    if path.startswith("/assets/"):
        name = path.removeprefix("/assets/")
        known = {f.name: f for f in FILES.iterdir() if f.is_file() and f.suffix in TYPES}
        return known.get(name)
    return None


def serve(handler: BaseHTTPRequestHandler, path: str) -> bool:
    """Answer a GET for a page, an asset or the config; False when the path is none of those."""
    if path == "/_local/config":
        body, content_type = json.dumps(config()).encode(), "application/json"
    else:
        file = _file(path)
        if file is None:
            return False
        body, content_type = file.read_bytes(), TYPES[file.suffix]
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in SECURITY_HEADERS.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)
    return True
