"""`monitor brands add|list|remove`: manage tracked brands; the running sink picks changes up by itself."""

from __future__ import annotations

import json

import click
from pydantic import ValidationError

from monitor.cli.common import run_with_engine
from monitor.cli.tables import render


@click.group("brands")
def brands() -> None:
    """Tracked brands: the rules the sink matches in post text and keywords."""


@brands.command("add")
@click.argument("name")
@click.option("--keyword", "keywords", multiple=True, help="A word or phrase meaning this brand (repeatable).")
@click.option("--alias", "aliases", multiple=True, help="Another name of the brand (repeatable).")
@click.option("--hashtag", "hashtags", multiple=True, help="A hashtag, with or without # (repeatable).")
@click.option("--handle", "handles", multiple=True, help="An @handle, with or without @ (repeatable).")
@click.option("--replace", is_flag=True, help="Replace the brand's terms instead of adding to them.")
def add(name: str, keywords: tuple[str, ...], aliases: tuple[str, ...], hashtags: tuple[str, ...],
        handles: tuple[str, ...], replace: bool) -> None:
    """Track NAME (or add terms to it). Matching is case-insensitive on whole words."""
    from monitor.store.brands import TrackedBrand, add_brand

    try:
        brand = TrackedBrand(name=name, keywords=list(keywords), aliases=list(aliases), hashtags=list(hashtags),
                             handles=list(handles))
    except ValidationError as exc:
        raise click.BadParameter(exc.errors()[0]["msg"], param_hint="NAME") from None
    saved = run_with_engine(lambda engine: add_brand(engine, brand, replace=replace))
    click.echo(f"tracking {saved.name}: " + _terms(saved))


@brands.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_(fmt: str) -> None:
    """Show every tracked brand and its terms."""
    from monitor.store.brands import list_brands

    tracked = run_with_engine(list_brands)
    if fmt == "json":
        click.echo(json.dumps([b.model_dump(mode="json") for b in tracked], indent=2))
        return
    rows = [(b.name, ", ".join(b.keywords), ", ".join(b.aliases), " ".join(f"#{t}" for t in b.hashtags),
             " ".join(f"@{h}" for h in b.handles), b.updated_at) for b in tracked]
    click.echo(render(["name", "keywords", "aliases", "hashtags", "handles", "updated_at"], rows))


@brands.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Stop tracking NAME (stored trends stay)."""
    from monitor.store.brands import remove_brand

    if not run_with_engine(lambda engine: remove_brand(engine, name)):
        raise click.ClickException(f"{name} is not tracked")
    click.echo(f"stopped tracking {name.lower()}")


def _terms(brand) -> str:
    parts = [*brand.keywords, *brand.aliases, *(f"#{t}" for t in brand.hashtags), *(f"@{h}" for h in brand.handles)]
    return ", ".join(parts) if parts else "(name only)"
