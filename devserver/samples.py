"""The sample events in events/, adapted to a caller: what the tests and the benchmarks invoke functions with."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from devserver.stack import ROOT

EVENTS = ROOT / "events"


@cache
def _sample(name: str) -> str:
    return (EVENTS / name).read_text()


def load_event(name: str) -> dict[str, Any]:
    return json.loads(_sample(name))


def appsync_event(
    sample: str, customer_id: str, email: str, site: str | None = "default", arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A sample AppSync event with the identity (and arguments) of the given caller."""
    event = copy.deepcopy(load_event(sample))
    claims = {**event["identity"]["claims"], "sub": customer_id, "email": email}
    if site is None:
        claims.pop("custom:site", None)
    else:
        claims["custom:site"] = site
    event["identity"].update({"sub": customer_id, "username": customer_id, "claims": claims})
    if arguments is not None:
        event["arguments"] = arguments
    return event
