"""The console and landing page files as the local server serves them (no browser needed)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from devserver import pages

pytestmark = pytest.mark.http


def fetch(local_api, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(local_api.base + path, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html"),
        ("/referrals.list?applyCode=ABCD2345", "text/html"),
        ("/assets/console.js", "text/javascript"),
        ("/assets/landing.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ],
)
def test_pages_and_assets_are_served_with_a_strict_policy(local_api, path, content_type):
    status, headers, body = fetch(local_api, path)
    assert status == 200
    assert headers["Content-Type"].startswith(content_type)
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body


@pytest.mark.parametrize(
    "path",
    ["/assets/../pages.py", "/assets/%2e%2e/pages.py", "/assets/", "/assets/nothing.js", "/console/index.html", "/x"],
)
def test_nothing_else_on_disk_is_reachable(local_api, path):
    status, _, body = fetch(local_api, path)
    assert status == 404
    assert b"import" not in body


def test_config_gives_the_pages_the_api_and_its_public_key(local_api):
    status, config = local_api.request("GET", "/_local/config")
    assert status == 200
    # and the configured sites (the contract's two without REFERRALS_CONFIG), for the console's figures
    assert config == {"graphqlUrl": "/graphql", "apiKey": pages.api_key(), "sites": ["de", "default"]}


def test_the_pages_load_nothing_from_outside():
    # Every src and href in the pages, and every url() in the styles, stays on this server.
    for file in pages.FILES.iterdir():
        source = file.read_text()
        for reference in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", source):
            assert reference.startswith(("/", "#", "data:")), f"{file.name} loads {reference}"
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", source), f"{file.name} loads a remote url()"
        assert not re.search(r"""fetch\(\s*["'`]https?:""", source), f"{file.name} calls a remote API"
