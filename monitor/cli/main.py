"""The `monitor` command line: run the pipeline's processes, inspect trends, export schemas."""

from __future__ import annotations

import click

from core.logging import configure_logging
from core.settings import get_settings


@click.group()
def main() -> None:
    """Multimodal sentiment monitor."""
    settings = get_settings()
    configure_logging(settings.runtime.log_level, settings.runtime.log_json)


def _register_commands() -> None:
    """One module per command group; each keeps its heavy imports inside its commands."""
    from monitor.cli.admin import migrate, prune
    from monitor.cli.analyst import sql, trends
    from monitor.cli.api import api
    from monitor.cli.bench import bench
    from monitor.cli.brands import brands
    from monitor.cli.devstack import demo, replay, stack
    from monitor.cli.ingest import ingest
    from monitor.cli.model import model
    from monitor.cli.processes import sink, worker
    from monitor.cli.recompute import recompute
    from monitor.cli.schema import schema
    from workers.evaluation.cli import evaluate
    from workers.training.cli import COMMANDS as TRAINING_COMMANDS

    for command in (demo, stack, worker, sink, ingest, replay, schema, brands, trends, sql, migrate, prune, bench, api,
                    model, recompute, *TRAINING_COMMANDS, evaluate):
        main.add_command(command)


_register_commands()
