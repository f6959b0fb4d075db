"""The programme's figures (docs/programme.md): counters per site and UTC day, added to inside the transactions
of the changes they count (a registration, a referral's move), or alone, on items of their own, for what no
transaction writes (invites mailed, lookups of valid codes). Read by one Query per shard."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pynamodb.exceptions import PynamoDBException
from pynamodb.transactions import TransactWrite

from referrals.storage.client import _failure, _query, _retry_conflicts
from referrals.storage.models import FIGURE_SHARDS, FIGURES, FiguresItem, figures_pk, figures_sk

# The suffix of the items counted outside any transaction (count_figures); it sorts after the day's own item.
ALONE = "#ALONE"


@dataclass(frozen=True)
class FigureChange:
    """Add `by` (which may be negative: a reversal made good) to one figure of one site on one UTC day."""

    site: str
    day: str  # yyyy-mm-dd
    figure: str  # one of FIGURES
    by: int = 1


def _by_item(changes: Sequence[FigureChange]) -> dict[tuple[str, str], dict[str, int]]:
    grouped: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for change in changes:
        assert change.figure in FIGURES, change.figure
        grouped[(change.site, change.day)][change.figure] += change.by
    return {key: {f: n for f, n in figures.items() if n} for key, figures in grouped.items()}


def _item(site: str, day: str) -> FiguresItem:
    return FiguresItem(figures_pk(site, random.randrange(FIGURE_SHARDS)), figures_sk(day))


def add_figures(transaction: TransactWrite, changes: Sequence[FigureChange]) -> None:
    """The figures' updates, in a transaction of the change they count: one item per site and day (a shard picked
    afresh each attempt), added last, after every update whose position the caller reads in a failure's reasons."""
    for (site, day), figures in _by_item(changes).items():
        if figures:
            transaction.update(
                _item(site, day), actions=[FiguresItem.counter(f).add(n) for f, n in sorted(figures.items())]
            )


def count_figures(changes: Sequence[FigureChange]) -> None:
    """For what no transaction of ours writes (invites mailed, lookups of valid codes): a plain UpdateItem (ADD) per
    site and day, on items of their own (`DAY#<day>#ALONE`). Never the items registrations' transactions add to:
    a transaction finding one of its items in another request's hands is cancelled (TransactionConflict), and
    public lookups must never slow a sign-up down. Plain updates of one item queue up; they do not conflict.
    One lost answer resent by botocore counts twice (ADD is not idempotent): docs/programme.md says so."""
    for (site, day), figures in _by_item(changes).items():
        if not figures:
            continue
        item = FiguresItem(figures_pk(site, random.randrange(FIGURE_SHARDS)), figures_sk(day) + ALONE)
        actions = [FiguresItem.counter(f).add(n) for f, n in sorted(figures.items())]
        try:
            _retry_conflicts(lambda item=item, actions=actions: item.update(actions=actions), "UpdateItem")
        except PynamoDBException as error:
            raise _failure(error, "UpdateItem") from error


def load_figures(site: str, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
    """Each day's figures from `first_day` to `last_day` (inclusive) that has any, summed over the shards: one
    Query per shard (more only past 1 MB, which 366 days of counters never reach). Eventually consistent: a
    report may miss what was counted in the last second."""
    days: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    for shard in range(FIGURE_SHARDS):
        request = {
            "TableName": FiguresItem.Meta.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": figures_pk(site, shard)},
                ":first": {"S": figures_sk(first_day)},
                ":last": {"S": figures_sk(last_day) + ALONE},
            },
        }
        for page in _query(request):
            for raw in page.get("Items", []):
                day = raw["sk"]["S"].removeprefix("DAY#").removesuffix(ALONE)
                for figure in FIGURES:
                    if figure in raw:
                        days[day][figure] += int(raw[figure]["N"])
    return dict(days)
