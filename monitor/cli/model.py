"""`monitor model ...`: the model's ONNX export (the CPU fast path) and its parity with PyTorch; which checkpoint
each model role serves (`serve`, `promote`, `assignments`: the model control topic)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from core.settings import get_settings

CHECKPOINT_HELP = "A MODEL_CHECKPOINT value: bootstrap (the shipped checkpoint), untrained, or a path."


@click.group()
def model() -> None:
    """The sentiment model: runtimes (ONNX export and parity) and serving (champion, challenger, promotion)."""


@model.command("export-onnx")
@click.option("--checkpoint", default=None, help=CHECKPOINT_HELP + "  [default: MODEL_CHECKPOINT]")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Export folder root [default: MODEL_ONNX_CACHE, else ~/.cache/sentiment-monitor/onnx].")
@click.option("--quantize", "method", type=click.Choice(["blockwise", "dynamic"]), default="blockwise",
              show_default=True, help="int8 method: blockwise MatMulNBits (int8 activations per block of 32) or "
              "quantize_dynamic (one activation scale per tensor; lower agreement).")
@click.option("--force", is_flag=True, help="Export again even when a current export is there.")
def export_onnx(checkpoint: str | None, cache: Path | None, method: str, force: bool) -> None:
    """Export the checkpoint to ONNX (fp32 + int8) where the worker looks for it, and probe both against PyTorch.
    Workers export on first use anyway; this does it ahead of time (an image build, a deploy step)."""
    from workers.inference.onnx_cache import (
        StaleExport,
        checkpoint_config,
        default_cache,
        export_checkpoint,
        fingerprint,
        fingerprint_key,
        read_export,
    )

    settings = get_settings().model
    checkpoint = checkpoint or settings.checkpoint
    expected = fingerprint(checkpoint, checkpoint_config(checkpoint))
    folder = (cache or settings.onnx_cache or default_cache()) / fingerprint_key(expected)
    try:
        if force:
            raise StaleExport("forced")
        export = read_export(folder, expected)
        click.echo(f"current export already there: {folder}")
    except StaleExport:
        export = export_checkpoint(checkpoint, folder, settings.threads, method)
    for precision, parity in export.manifest["probe"].items():
        click.echo(f"{precision}: probe agreement {parity['agreement'] * 100:.2f}% over {parity['posts']} posts, "
                   f"max |dp| {parity['max_abs_diff']:.3g}  {'holds' if parity['holds'] else 'DOES NOT HOLD'}")
    click.echo(f"wrote {folder}")


@model.command("parity")
@click.option("--checkpoint", default=None, help=CHECKPOINT_HELP + "  [default: MODEL_CHECKPOINT]")
@click.option("--sets", "set_names", default="vader-tweets,image-text", show_default=True,
              help="Comma-separated `monitor eval` sets (tweeteval-test needs --tweet-data).")
@click.option("--tweet-data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder holding tweeteval/ and umsab/ (default: $MONITOR_TWEET_DATA, else shared/data).")
@click.option("--precisions", default="fp32,int8", show_default=True)
@click.option("--limit", type=int, default=None, help="Score only a seeded sample of N items of each set.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Export folder root [default: MODEL_ONNX_CACHE]; exported first if needed.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="[default: bench/results/onnx-parity-<checkpoint>-cpu.json]")
def parity(checkpoint: str | None, set_names: str, tweet_data: Path | None, precisions: str, limit: int | None,
           batch_size: int, cache: Path | None, out: Path | None) -> None:
    """Label agreement and max |delta p| of the ONNX runtimes against PyTorch, and each one's accuracy, per set."""
    import random

    from benchmarks.report import host_info, write_report
    from workers.evaluation.parity import runtime_parity
    from workers.evaluation.sets import loaders
    from workers.inference.model import SentimentModel
    from workers.inference.onnx_cache import ensure_export, load_export
    from workers.training.tweet_corpora import default_tweet_data

    settings = get_settings().model
    checkpoint = checkpoint or settings.checkpoint
    table = loaders(tweet_data or default_tweet_data())
    names = set_names.split(",")
    missing = [name for name in names if name not in table]
    if missing:
        raise click.ClickException(f"unknown or unavailable set(s) {missing}; see `monitor eval --list`")
    export = ensure_export(checkpoint, cache or settings.onnx_cache)
    reference = SentimentModel.load(checkpoint, "cpu")
    import torch

    candidates = {f"onnx-{p}": load_export(export, p, torch.get_num_threads()) for p in precisions.split(",")}
    sets = []
    for name in names:
        eval_set = table[name]()
        if limit and limit < len(eval_set.items):
            eval_set.items = random.Random(0).sample(eval_set.items, limit)
        sets.append(eval_set)
    results = runtime_parity(reference, candidates, sets, batch_size, echo=click.echo)
    out = out or Path(f"bench/results/onnx-parity-{Path(str(checkpoint)).stem}-cpu.json")
    report = {
        "benchmark": "ONNX runtimes vs PyTorch on evaluation sets: label agreement, max |dp|, accuracy (no OCR)",
        "command": f"monitor model parity --checkpoint {checkpoint} --sets {set_names} --precisions {precisions}"
                   + (f" --limit {limit}" if limit else "") + f" --batch-size {batch_size}",
        "host": host_info(),
        "version": export.version,
        "export": {k: export.manifest[k] for k in ("quantization", "probe", "torch", "onnxruntime")},
        "sets": results,
    }
    write_report(report, out)
    click.echo(json.dumps({"wrote": str(out)}))


ROLES = click.Choice(["champion", "challenger"])


def _assignments() -> dict:
    import asyncio

    from core.streaming.model_control import read_assignments

    return asyncio.run(read_assignments(get_settings()))


def _write(assignments: dict) -> None:
    import asyncio

    from core.streaming.model_control import write_assignments

    asyncio.run(write_assignments(get_settings(), assignments))


def _checked_id(checkpoint: str, model_id: str | None) -> str:
    """Load the checkpoint here as a worker would check it (sentiment labels, one probe prediction); its model id."""
    from workers.inference.model import SentimentModel
    from workers.inference.swap import ModelRefused, validate

    try:
        loaded = SentimentModel.load(checkpoint, "cpu")
        validate(loaded, model_id, get_settings().worker.max_image_pixels)
    except ModelRefused as exc:
        raise click.ClickException(f"{checkpoint}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any load failure is the operator's to see, not a traceback
        raise click.ClickException(f"{checkpoint} does not load: {exc}") from None
    return loaded.version


@model.command("serve")
@click.argument("checkpoint")
@click.option("--role", type=ROLES, required=True, help="Which workers serve it (MODEL_ROLE).")
@click.option("--share", type=click.FloatRange(0.0, 1.0), default=None,
              help="Challenger only: the share of posts it shadow-scores  [default: the workers' MODEL_SHADOW_SHARE].")
@click.option("--model-id", default=None, help="The id the checkpoint must load as  [default: its id, computed here].")
@click.option("--no-check", is_flag=True, help="Do not load the checkpoint here (a path only the workers can read); "
              "the workers check it, against --model-id if given.")
def serve(checkpoint: str, role: str, share: float | None, model_id: str | None, no_check: bool) -> None:
    """Assign CHECKPOINT (a path, or bootstrap, multilingual, untrained) to every worker of a role: each loads it,
    checks it and swaps it in between batches, and serves it after a restart too."""
    from datetime import UTC, datetime

    from schemas import ModelAssignment, ModelRole

    if share is not None and role != "challenger":
        raise click.UsageError("--share is for the challenger: the champion scores every post")
    if not no_check:
        model_id = _checked_id(checkpoint, model_id)
    record = ModelAssignment(checkpoint=checkpoint, model_id=model_id, share=share, updated_at=datetime.now(UTC))
    _write({ModelRole(role): record})
    click.echo(json.dumps({role: record.model_dump(mode="json")}, indent=2))


@model.command("promote")
def promote() -> None:
    """Swap the roles: the challenger's checkpoint becomes the champion's, and the champion's (its record, else
    MODEL_CHECKPOINT) the challenger's, with the challenger's share."""
    from datetime import UTC, datetime

    from schemas import ModelAssignment, ModelRole

    current = _assignments()
    challenger = current.get(ModelRole.CHALLENGER)
    if challenger is None:
        raise click.ClickException("no challenger is assigned: nothing to promote (`monitor model serve --role "
                                   "challenger CHECKPOINT` first)")
    champion = current.get(ModelRole.CHAMPION) or ModelAssignment(checkpoint=get_settings().model.checkpoint)
    now = datetime.now(UTC)
    swapped = {
        ModelRole.CHAMPION: ModelAssignment(checkpoint=challenger.checkpoint, model_id=challenger.model_id,
                                            updated_at=now),
        ModelRole.CHALLENGER: ModelAssignment(checkpoint=champion.checkpoint, model_id=champion.model_id,
                                              share=challenger.share, updated_at=now),
    }
    _write(swapped)
    click.echo(json.dumps({role.value: record.model_dump(mode="json") for role, record in swapped.items()}, indent=2))


@model.command("assignments")
def assignments() -> None:
    """Print each role's current control record (null: none; the champion then serves MODEL_CHECKPOINT)."""
    from schemas import ModelRole

    current = _assignments()
    click.echo(json.dumps({role.value: current[role].model_dump(mode="json") if role in current else None
                           for role in ModelRole}, indent=2))
