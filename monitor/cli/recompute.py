"""`monitor recompute`: re-score stored posts with another model into its own version of the trends."""

from __future__ import annotations

from datetime import datetime

import click

from core.settings import get_settings
from monitor.cli.common import as_utc, run_with_engine

CHECKPOINT_HELP = "A MODEL_CHECKPOINT value: bootstrap, multilingual, untrained, or a checkpoint path."


@click.command()
@click.option("--model", "checkpoint", required=True, help=CHECKPOINT_HELP)
@click.option("--since", type=click.DateTime(), required=True, help="Posts created at or after this (UTC unless an "
              "offset).")
@click.option("--until", type=click.DateTime(), default=None, help="Posts created before this (default: now).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Posts scored and written per transaction.")
def recompute(checkpoint: str, since: datetime, until: datetime | None, batch_size: int) -> None:
    """Re-score the stored posts created in [--since, --until) with --model into that model's own trend rows,
    leaving the live counts alone; read them with `monitor trends --model ID` or `?model=ID`. Posts the model
    already scored (live, or by an earlier run) are skipped, so an interrupted run can simply be started again."""
    from core.progress import progress_bar
    from monitor.recompute.runner import recompute as run
    from workers.inference.runtime import load_worker_model

    since_utc, until_utc = as_utc(since), as_utc(until)
    if until_utc is not None and until_utc <= since_utc:
        raise click.BadParameter("must be later than --since", param_hint="--until")
    settings = get_settings().model.model_copy(update={"checkpoint": checkpoint})
    try:
        model = load_worker_model(settings)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot load --model {checkpoint}: {exc}") from None

    async def work(engine):
        with progress_bar(unit="post", desc=f"re-scoring with {model.version}") as bar:
            return await run(engine, model, since_utc, until_utc, batch_size, bar.update)

    report = run_with_engine(work)
    click.echo(f"{model.version}: re-scored {report.rescored} of {report.candidates} posts in {report.seconds:.1f} s "
               f"({report.posts_per_second:.0f} posts/s)")
    notes = [(report.without_content, "had neither text nor a stored thumbnail (not scored)"),
             (report.undecodable, "had a thumbnail that did not decode (scored on text)"),
             (report.from_thumbnail, "were scored with their image's thumbnail, not the original"),
             (report.from_excerpt, "were read from a 280-character excerpt stored before migration 0010")]
    for count, what in notes:
        if count:
            click.echo(f"  {count} posts {what}")
    click.echo(f"read them: monitor trends --model {model.version}")
