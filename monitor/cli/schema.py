"""`monitor schema`: the wire messages' JSON Schemas, for producers written in other languages."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--out", type=click.Path(dir_okay=True, file_okay=False), default=None,
              help="Write one <Model>.schema.json per message here instead of printing.")
def schema(out: str | None) -> None:
    """Export the JSON Schema of the wire messages for non-Python producers."""
    from schemas import json_schemas

    schemas = json_schemas()
    if out is None:
        click.echo(json.dumps(schemas, indent=2))
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, body in schemas.items():
        (Path(out) / f"{name}.schema.json").write_text(json.dumps(body, indent=2) + "\n")
    click.echo(f"wrote {len(schemas)} schemas to {out}")
