"""The text forms of times and amounts that the referral data stores and its events carry."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal


def iso(moment: datetime) -> str:
    """The one text form of a time we store: UTC, milliseconds, `+00:00` (sorts as it reads)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def day(moment: datetime) -> str:
    """The UTC day a moment falls on, yyyy-mm-dd: what the programme's figures count by."""
    return iso(moment)[:10]


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def money(amount: Decimal) -> str:
    return format(amount.quantize(Decimal("0.01")), "f")
