"""The reward lifecycle of a referral: order facts in, at most one reward per friend out (docs/rewards.md).

Its rooms:
- `lifecycle`: the rules, with no I/O: the facts about a friend's orders give the referral's state.
- `events`: the reward events each move announces, as outbox records.
- `orchestration`: the writes that move a referral: order events, the reconciliation, earning under the cap.
- `review`: a reviewer releases or rejects a flagged referral.
- `listing`: the customer's view of their referrals.

`rewards.<name>` reaches each public name in its room, importing the room on first use only (`from referrals
import rewards` alone loads none): what only some requests need stays off every other request's cold start
(docs/performance.md). A function that exists for one room imports that room at the top instead
(`from referrals.rewards import orchestration`), so that its cold start pays for it, once.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_ROOMS = {
    "lifecycle": (
        "DECIDED",
        "SETTLED",
        "FactKind",
        "Order",
        "OrderFact",
        "Projection",
        "Reason",
        "Review",
        "Status",
        "deadline_of",
        "fall_reason",
        "fold",
        "project",
    ),
    "events": ("prepare_registration",),
    "orchestration": (
        "CAP_RETENTION",
        "FACT_RETENTION",
        "Applied",
        "Outcome",
        "ReconcileReport",
        "apply_order_event",
        "reconcile",
    ),
    "review": ("MAX_ID_LENGTH", "ReviewDecision", "ReviewOutcome", "review_referral"),
    "listing": ("MAX_OFFSET", "MAX_PAGE_SIZE", "ReferralPage", "ReferralSummary", "list_referrals", "summary"),
}
_ROOM_OF = {name: room for room, names in _ROOMS.items() for name in names}
__all__ = sorted(_ROOM_OF)


def __getattr__(name: str) -> Any:
    room = _ROOM_OF.get(name)
    if room is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{room}"), name)
    globals()[name] = value  # found once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ROOM_OF})
