"""The programme's figures per site and UTC day (docs/programme.md): what is counted where, and the report.

Sign-ups, first qualifying orders and rewards are counted inside the transactions of the changes they count
(storage.figures), so they are exact whatever the retries and redeliveries. Invites mailed and lookups of valid
codes are counted by `count`, after the fact, by a plain update of items of their own (storage.count_figures).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from referrals import formats, storage
from referrals.config import Settings
from referrals.errors import Busy, InvalidInput, Refused

MAX_DAYS = 366
_AWS_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2}(?::\d{2})?)?", re.ASCII)
log = logging.getLogger("referrals")


@dataclass(frozen=True)
class ProgrammeFigures:
    invites_sent: int = 0
    offer_lookups: int = 0
    sign_ups_with_code: int = 0
    first_qualifying_orders: int = 0
    rewards_earned: int = 0
    rewards_reversed: int = 0


@dataclass(frozen=True)
class ProgrammeDay:
    date: str
    figures: ProgrammeFigures


@dataclass(frozen=True)
class ProgrammeStats:
    site_key: str
    days: list[ProgrammeDay]
    totals: ProgrammeFigures


def today(now: datetime | None = None) -> str:
    return formats.day(now or datetime.now(UTC))


def count(site: str, figure: str, by: int = 1, now: datetime | None = None) -> bool:
    """Add to one of today's figures of `site`; False when it could not be counted (AWS refused, or stayed busy).
    What it counts has happened and stands (a mail sent, a lookup answered), so the request goes on and the figure
    misses it: logged, as FiguresNotCounted (docs/operations.md)."""
    if by == 0:
        return True
    try:
        storage.count_figures([storage.FigureChange(site, today(now), figure, by)])
    except (Busy, Refused) as error:
        log.error(
            "FiguresNotCounted", extra={"figure": figure, "site": site, "by": by, "errorType": type(error).__name__}
        )
        return False
    return True


def _day(value: Any, name: str) -> date:
    problem = InvalidInput(name, "NOT_A_DATE", f"{name} must be a date, yyyy-mm-dd")
    # AWSDate allows a zone after the date (2026-11-28Z, 2026-11-28+01:00); the figures' days are UTC days, so a
    # date names its UTC day whatever zone it carries.
    found = _AWS_DATE.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise problem
    try:
        return date.fromisoformat(found.group(1))
    except ValueError:
        raise problem from None


def _figures(counts: dict[str, int]) -> ProgrammeFigures:
    return ProgrammeFigures(
        invites_sent=counts["invitesSent"],
        offer_lookups=counts["offerLookups"],
        sign_ups_with_code=counts["signUpsWithCode"],
        first_qualifying_orders=counts["firstQualifyingOrders"],
        rewards_earned=counts["rewardsEarned"],
        rewards_reversed=counts["rewardsReversed"],
    )


def stats(settings: Settings, site_key: Any, first: Any, last: Any) -> ProgrammeStats:
    """Every day from `first` to `last` (inclusive, zeros included) and the totals: one Query per figure shard."""
    if not isinstance(site_key, str) or site_key not in settings.sites:
        raise InvalidInput("siteKey", "UNKNOWN_SITE", "siteKey names no configured site")
    start, end = _day(first, "from"), _day(last, "to")
    if end < start:
        raise InvalidInput("to", "BEFORE_FROM", "to must not be before from")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput("to", "RANGE_TOO_LONG", f"from to to spans at most {MAX_DAYS} days")
    found = storage.load_figures(site_key, start.isoformat(), end.isoformat())
    zero = dict.fromkeys(storage.FIGURES, 0)
    days = [
        ProgrammeDay(day, _figures(found.get(day, zero)))
        for day in ((start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1))
    ]
    totals = {figure: sum(counts[figure] for counts in found.values()) for figure in storage.FIGURES}
    return ProgrammeStats(site_key, days, _figures(totals))
