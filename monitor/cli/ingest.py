"""`monitor ingest bluesky|mastodon|rss|file`: source connectors, each its own process, producing posts.

Every subcommand shares the filters (`--track`, `--lang`, `--brand`) and the resume options; the cursor lives in
INGEST_STATE_DIR under the connector's `--name`, and metrics are served on METRICS_PORT.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from core.settings import get_settings
from monitor.cli.processes import serve_metrics_or_exit


def connector_options(default_name: str | None) -> Callable:
    """The options every connector takes, added to a subcommand."""

    def decorate(command: Callable) -> Callable:
        options = [
            click.option("--track", "track", multiple=True, envvar="INGEST_TRACK",
                         help="Keep only posts that mention one of these comma-separated terms: words or phrases "
                         "(matched whole, any case) and #hashtags. Matches are added to the post's keywords. "
                         "[env: INGEST_TRACK]"),
            click.option("--lang", "languages", multiple=True, envvar="INGEST_LANG",
                         help="Keep only posts in these comma-separated ISO 639-1 languages, as the source labels "
                         "them. [env: INGEST_LANG]"),
            click.option("--brand", "brands", multiple=True, envvar="INGEST_BRAND",
                         help="Tag every post with this brand (comma-separated for several). [env: INGEST_BRAND]"),
            click.option("--name", default=default_name, show_default=default_name is not None,
                         help="The connector's name: its cursor file and metrics label. Run two connectors of one "
                         "kind under two names." + ("" if default_name else "  [default: file-<file name stem>]")),
            click.option("--from-start", is_flag=True,
                         help="Forget the saved cursor and start from the source's beginning (live, for streams)."),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _run(source_factory: Callable[..., Any], track: tuple[str, ...], languages: tuple[str, ...],
         brands: tuple[str, ...], from_start: bool, serve_metrics: bool = True) -> None:
    from aiokafka.errors import KafkaConnectionError

    from connectors.filters import PostFilter, parse_terms
    from connectors.process import run_connector
    from connectors.source import SourceRefused

    settings = get_settings()
    if not settings.kafka.bootstrap:
        raise click.UsageError("KAFKA_BOOTSTRAP is not set: point it at a broker (`monitor stack` starts one)")
    try:
        source = source_factory(settings)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    post_filter = PostFilter(track=parse_terms(track), languages=frozenset(parse_terms(languages)))
    if serve_metrics:
        serve_metrics_or_exit(settings.runtime.metrics_port)
    try:
        summary = asyncio.run(run_connector(settings, source, post_filter=post_filter,
                                            brands=parse_terms(brands), from_start=from_start))
    except SourceRefused as exc:
        raise click.ClickException(str(exc)) from None
    except KafkaConnectionError as exc:
        raise click.ClickException(f"cannot reach the broker at {settings.kafka.bootstrap}: {exc}") from None
    click.echo(f"{source.name}: {summary.posts} posts and {summary.deletions} deletions published, "
               f"{summary.filtered} filtered out, {summary.malformed} malformed (in the dead-letter topic)")


def _backoff(settings):
    from connectors.backoff import Backoff

    return Backoff(settings.ingest.backoff_initial_s, settings.ingest.backoff_max_s)


@click.group()
def ingest() -> None:
    """Read posts from a social network, feeds or files and publish them to the posts topic."""


@ingest.command()
@click.option("--url", default="wss://jetstream2.us-east.bsky.network/subscribe", show_default=True,
              envvar="JETSTREAM_URL", help="A Jetstream instance. [env: JETSTREAM_URL]")
@click.option("--did", "dids", multiple=True, help="Only these accounts (DIDs); repeatable.")
@click.option("--image-cdn", default="https://cdn.bsky.app", show_default=True, envvar="BLUESKY_IMAGE_CDN",
              help="Where the worker fetches post images from. [env: BLUESKY_IMAGE_CDN]")
@connector_options("bluesky")
def bluesky(url: str, dids: tuple[str, ...], image_cdn: str, name: str, **common: Any) -> None:
    """Bluesky posts and deletions from Jetstream (WebSocket), resumed from the last acknowledged time_us."""
    from connectors.bluesky import JetstreamSource

    _run(lambda s: JetstreamSource(url, dids=dids, image_cdn=image_cdn, name=name, backoff=_backoff(s)), **common)


@ingest.command()
@click.option("--instance", required=True, envvar="MASTODON_INSTANCE",
              help="The server, e.g. https://mastodon.social. [env: MASTODON_INSTANCE]")
@click.option("--stream", type=click.Choice(["public", "public:local", "hashtag"]), default="public",
              show_default=True, envvar="MASTODON_STREAM",
              help="Federated, local-only, or one hashtag's statuses. [env: MASTODON_STREAM]")
@click.option("--tag", default=None, envvar="MASTODON_TAG",
              help="With --stream hashtag: the hashtag (without #). [env: MASTODON_TAG]")
@click.option("--access-token", default=None, envvar="MASTODON_ACCESS_TOKEN",
              help="An application's token (many servers require one for streaming). [env: MASTODON_ACCESS_TOKEN]")
@click.option("--streaming-url", default=None, envvar="MASTODON_STREAMING_URL",
              help="The streaming server, when the instance does not say (default: asked from /api/v2/instance).")
@connector_options("mastodon")
def mastodon(instance: str, stream: str, tag: str | None, access_token: str | None, streaming_url: str | None,
             name: str, **common: Any) -> None:
    """Mastodon statuses and deletions from the streaming API, gaps filled from the REST timeline."""
    from connectors.mastodon import MastodonSource

    _run(lambda s: MastodonSource(instance, stream=stream, tag=tag, access_token=access_token,  # type: ignore[arg-type]
                                  streaming_url=streaming_url, name=name, backoff=_backoff(s)), **common)


@ingest.command()
@click.argument("urls", nargs=-1, required=True, envvar="FEED_URLS")
@click.option("--interval", type=click.FloatRange(min=1.0), default=300.0, show_default=True, envvar="FEED_INTERVAL_S",
              help="Seconds between two polls of one feed (be polite: many sites ask for 15 minutes or more). "
              "[env: FEED_INTERVAL_S]")
@connector_options("feeds")
def rss(urls: tuple[str, ...], interval: float, name: str, **common: Any) -> None:
    """New entries of RSS and Atom feeds (URLS, or space-separated in FEED_URLS), polled with conditional GET."""
    from connectors.feeds import FeedSource

    _run(lambda s: FeedSource(urls, interval_s=interval, name=name, backoff=_backoff(s)), **common)


@ingest.command("file")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(["auto", "csv", "jsonl", "parquet"]), default="auto",
              show_default=True, help="auto: from the file name (.csv/.tsv, .jsonl/.ndjson/.json, .parquet).")
@click.option("--column", "columns", multiple=True, metavar="FIELD=COLUMN",
              help="Read a Post field from a differently named column, e.g. --column text=body; repeatable.")
@click.option("--source", "source_label", default="file", show_default=True,
              help="The posts' `source` where the file has none.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@connector_options(None)
def file_import(path: Path, file_format: str, columns: tuple[str, ...], source_label: str, progress: bool,
                name: str | None, **common: Any) -> None:
    """Backfill from a CSV, JSON Lines or Parquet export; resumes an interrupted import of the same file."""
    from connectors.files import FileSource

    mapping = dict(_field_column(c) for c in columns)
    # An import is short-lived and often runs beside a worker: it serves metrics only when METRICS_PORT is given.
    _run(lambda s: FileSource(path, file_format=file_format, columns=mapping,  # type: ignore[arg-type]
                              source=source_label, name=name, progress=progress),
         **common, serve_metrics="METRICS_PORT" in os.environ)


def _field_column(spec: str) -> tuple[str, str]:
    field, separator, column = spec.partition("=")
    if not separator or not field or not column:
        raise click.BadParameter(f"{spec!r}: expected FIELD=COLUMN, e.g. text=body")
    return field.strip(), column.strip()
