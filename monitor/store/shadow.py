"""Shadow scoring's store: a challenger's results, kept apart from the trends, and how far they agree with the
champion's.

The challenger's workers score a share of the live posts into their own topic; the sink keeps each result once per
post and model (`shadow_result`, ON CONFLICT DO NOTHING: redeliveries change nothing). Agreement is computed when
read, by joining them with the champion's results in `post_sentiment`, so a result whose champion result arrives
later is compared then, and a deleted post drops out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import String, bindparam, column, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.db import post_sentiment, shadow_result
from schemas import LABELS, Label, SentimentResult


def shadow_row(result: SentimentResult) -> dict:
    p = result.probabilities
    return {"post_id": result.post_id, "model_version": result.model_version,
            "created_at": result.created_at.isoformat(), "label": result.label.value,
            "p_negative": p.get(Label.NEGATIVE, 0.0), "p_neutral": p.get(Label.NEUTRAL, 0.0),
            "p_positive": p.get(Label.POSITIVE, 0.0), "polarity": result.polarity}


def _shadow_statement():
    sr = shadow_result.c
    rows = func.jsonb_to_recordset(bindparam("rows", type_=JSONB)).table_valued(
        column("post_id", String), column("model_version", String), column("created_at", sr.created_at.type),
        column("label", String), column("p_negative", sr.p_negative.type), column("p_neutral", sr.p_neutral.type),
        column("p_positive", sr.p_positive.type), column("polarity", sr.polarity.type),
    ).render_derived(name="batch", with_types=True)
    new = (insert(shadow_result).from_select([c.name for c in rows.c], select(*rows.c))
           .on_conflict_do_nothing(index_elements=["post_id", "model_version"]).returning(sr.post_id).cte("new"))
    return select(func.count()).select_from(new)


SHADOW_STATEMENT = _shadow_statement()


async def write_shadow_results(engine: AsyncEngine, results: Sequence[SentimentResult]) -> int:
    """Store a batch of a challenger's results; returns how many were new."""
    unique = {(r.post_id, r.model_version): r for r in reversed(results)}
    if not unique:
        return 0
    rows = [shadow_row(r) for r in sorted(unique.values(), key=lambda r: (r.post_id, r.model_version))]
    async with engine.begin() as conn:
        return (await conn.execute(SHADOW_STATEMENT, {"rows": rows})).scalar_one()


@dataclass
class ShadowComparison:
    """One challenger against the champion(s) that scored the same posts."""

    challenger: str
    champions: dict[str, int] = field(default_factory=dict)
    """Champion model id -> posts compared with it."""
    confusion: dict[str, dict[str, int]] = field(default_factory=lambda: {a.value: {b.value: 0 for b in LABELS}
                                                                          for a in LABELS})
    """Champion label -> challenger label -> posts."""
    waiting: int = 0
    """Challenger results whose post has no champion result (yet), or was deleted."""

    @property
    def compared(self) -> int:
        return sum(sum(row.values()) for row in self.confusion.values())

    @property
    def agreement(self) -> float | None:
        """Share of compared posts both models labelled alike; None before any."""
        agreed = sum(self.confusion[label.value][label.value] for label in LABELS)
        return agreed / self.compared if self.compared else None

    def label_shares(self) -> dict[str, dict[str, float]]:
        """Per model role, the share of compared posts in each label (a challenger that shifts the mix shows)."""
        total = self.compared or 1
        champion = {a: sum(row.values()) / total for a, row in self.confusion.items()}
        challenger = {b.value: sum(row[b.value] for row in self.confusion.values()) / total for b in LABELS}
        return {"champion": champion, "challenger": challenger}


async def compare_shadow(engine: AsyncEngine, since: datetime | None = None, until: datetime | None = None,
                         challenger: str | None = None) -> list[ShadowComparison]:
    """Every challenger's agreement with the champion over the shadow results recorded in [since, until), most
    compared first."""
    sr, ps = shadow_result.c, post_sentiment.c
    where = []
    if since is not None:
        where.append(sr.recorded_at >= since)
    if until is not None:
        where.append(sr.recorded_at < until)
    if challenger is not None:
        where.append(sr.model_version == challenger)
    joined = shadow_result.outerjoin(post_sentiment, (ps.post_id == sr.post_id) & ps.deleted_at.is_(None))
    query = (select(sr.model_version, ps.model_version.label("champion"), ps.label.label("champion_label"),
                    sr.label, func.count().label("posts"))
             .select_from(joined).where(*where)
             .group_by(sr.model_version, ps.model_version, ps.label, sr.label))
    comparisons: dict[str, ShadowComparison] = {}
    async with engine.connect() as conn:
        for row in (await conn.execute(query)).mappings():
            comparison = comparisons.setdefault(row["model_version"], ShadowComparison(row["model_version"]))
            if row["champion"] is None:
                comparison.waiting += row["posts"]
                continue
            comparison.champions[row["champion"]] = comparison.champions.get(row["champion"], 0) + row["posts"]
            comparison.confusion[row["champion_label"]][row["label"]] += row["posts"]
    return sorted(comparisons.values(), key=lambda c: (-c.compared, c.challenger))
