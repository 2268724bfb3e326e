"""`monitor trends` and `monitor sql`: the analyst's command line over PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime

import click

from core.settings import get_settings
from monitor.cli.common import as_utc, database_url, run_with_engine
from monitor.cli.tables import FORMATS, render, render_records
from monitor.store.db import GRANULARITIES

LANGUAGE = re.compile(r"[a-z]{2}|und")


def _language(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not LANGUAGE.fullmatch(value):
        raise click.BadParameter("an ISO 639-1 code such as de, or und for posts whose language could not be told")
    return value


@click.command()
@click.option("--brand", default=None, help="Only this brand (default: all).")
@click.option("--granularity", type=click.Choice(GRANULARITIES), default="minute", show_default=True)
@click.option("--since", type=click.DateTime(), default=None, help="Bucket start >= this (UTC unless an offset).")
@click.option("--until", type=click.DateTime(), default=None, help="Bucket start < this (UTC unless an offset).")
@click.option("--language", default=None, callback=_language,
              help="Only posts in this language (de; und: unknown), whether the model supports it or not "
                   "(default: every language it supports).")
@click.option("--model", default=None, help="Only this model's counts (a model id as results carry it, e.g. "
              "radm-bootstrap-2@b9254a5238cd): the posts it scored live and those `monitor recompute` scored with it "
              "(default: the live counts, whichever model scored them).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def trends(brand: str | None, granularity: str, since: datetime | None, until: datetime | None,
           language: str | None, model: str | None, fmt: str) -> None:
    """Print sentiment trends per brand and bucket from PostgreSQL."""
    from monitor.store.languages import language_supported
    from monitor.store.retention import Retention
    from monitor.store.trends import trend_records

    since, until = as_utc(since), as_utc(until)
    if reason := Retention.from_settings(get_settings()).pruned_window(granularity, since):
        raise click.BadParameter(reason, param_hint="--since")

    async def read(engine):
        records = await trend_records(engine, brand, granularity, since, until, language, model)
        if language is None:
            return records, None
        brands = [brand.lower()] if brand else None
        return records, await language_supported(engine, brands, language, granularity, since, until)

    records, supported = run_with_engine(read)
    click.echo(render_records(records, fmt) if records or fmt != "table" else "no buckets match")
    if supported is False:  # on stderr: CSV and JSON on stdout stay machine-readable
        click.echo(f"language {language}: the model was not evaluated on it; default trends leave these posts out",
                   err=True)


@click.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--limit", type=int, default=None, help="Print at most this many rows.")
def sql(query: str, fmt: str, limit: int | None) -> None:
    """Run QUERY as the read-only role monitor_reader in a read-only transaction and print the rows (views:
    trend_summary, daily_brand_sentiment, daily_share_of_voice, net_sentiment)."""
    from sqlalchemy.exc import OperationalError

    from monitor.store.analytics import QueryError, analyst_url, readonly_query

    url = analyst_url(database_url(), get_settings().store.analyst_database_url)
    try:
        columns, rows = run_with_engine(lambda engine: readonly_query(engine, query, limit), url)
    except QueryError as exc:
        raise click.ClickException(str(exc)) from None
    except OperationalError as exc:
        raise click.ClickException(f"cannot connect as the analyst role ({exc.orig}); set ANALYST_DATABASE_URL, "
                                   "see `monitor sql --help`") from None
    click.echo(render(columns, rows, fmt) if columns else "(no rows returned)")
