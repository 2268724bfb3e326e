"""Score every evaluation set with the model (as the worker scores posts) and the lexicons; tables and plots.

The model sees each item through the worker's own path: `SentimentModel.decode` (the image at the model's
size), `add_image_text` (OCR, when enabled), then `SentimentModel.score`. Lexicons score the same
text, including the OCR'd text for image-only posts, so every row of a table is computed on the same
items.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from core.logging import get_logger
from schemas import Post
from workers.enrich.ocr import ImageTextReader, add_image_text
from workers.evaluation import lexicons
from workers.evaluation.sets import EvalItem, EvalSet
from workers.inference.model import SentimentModel
from workers.radm.config import SENTIMENT_LABELS
from workers.training.metrics import classification_metrics, save_confusion_png

log = get_logger(__name__)

MAX_PIXELS = 40_000_000
PUBLISHED_TWEETEVAL = {"TimeLMs-2021": 73.7, "BERTweet": 73.4, "RoBERTa-Base": 71.3, "FastText": 62.9,
                       "SVM": 62.9, "LSTM": 58.3}
"""TweetEval sentiment test, macro-averaged recall (Barbieri et al. 2020; Loureiro et al. 2022)."""
PUBLISHED_UMSAB = {"english": {"XLM-T": 70.6}, "german": {"XLM-T": 77.3}, "hindi": {"XLM-T": 56.4},
                   "spanish": {"XLM-T": 67.9}}
"""UMSAB test macro-F1 per language as published (Barbieri et al. 2022, XLM-T); the other languages' per-language
figures are not restated here."""
PUBLISHED_UMSAB_AVERAGE = {"FastText (monolingual)": 51.0, "XLM-R": 66.8, "XLM-T": 69.4}
"""UMSAB test macro-F1, all eight languages averaged (same paper)."""
IMAGE_CONDITIONS = {"text only": (True, False, True), "image only, no OCR": (False, True, False),
                    "image only": (False, True, True), "text + image": (True, True, True)}
"""How the image set is posted: (with its text, with its image, OCR as configured: else never)."""


@dataclass(frozen=True)
class Scored:
    """What one scorer got on one set (or one condition of the image set)."""

    scorer: str
    metrics: dict[str, Any]


def _posts(items: Sequence[EvalItem], with_text: bool, with_image: bool) -> list[Post]:
    now = datetime.now(UTC)
    return [Post(post_id=item.id or f"item-{i}", created_at=now, text=item.text if with_text else "",
                 image=item.image if with_image else None) for i, item in enumerate(items)]


def model_inputs(model: SentimentModel, posts: Sequence[Post], reader: ImageTextReader | None,
                 desc: str) -> list[tuple[str, Any]]:
    """Each post as the worker's triage hands it to the model: (text incl. OCR'd image text, pixels)."""
    return [add_image_text(model.decode(post, MAX_PIXELS), post.image, reader, MAX_PIXELS)
            for post in tqdm(posts, desc=f"{desc}: decode", unit="post", disable=None, leave=False)]


def model_probabilities(model: SentimentModel, decoded: Sequence[tuple[str, Any]], batch_size: int,
                        desc: str) -> list[list[float]]:
    probabilities: list[list[float]] = []
    for start in tqdm(range(0, len(decoded), batch_size), desc=f"{desc}: model", unit="batch", disable=None,
                      leave=False):
        probabilities.extend(model.score(decoded[start:start + batch_size]))
    return probabilities


def _metrics(labels: list[int], predictions: list[int], probabilities: list[list[float]] | None = None):
    return classification_metrics(labels, predictions, SENTIMENT_LABELS, probabilities)


def score_condition(model: SentimentModel, items: Sequence[EvalItem], reader: ImageTextReader | None,
                    with_text: bool, with_image: bool, batch_size: int, desc: str) -> list[Scored]:
    """The model and each lexicon on one way of posting the items."""
    labels = [item.label for item in items]
    decoded = model_inputs(model, _posts(items, with_text, with_image), reader, desc)
    probabilities = model_probabilities(model, decoded, batch_size, desc)
    predictions = [max(range(len(p)), key=p.__getitem__) for p in probabilities]
    rows = [Scored("model", _metrics(labels, predictions, probabilities))]
    texts = [text for text, _ in decoded]
    for name in lexicons.LEXICONS:
        rows.append(Scored(name, _metrics(labels, lexicons.predict(name, texts))))
    return rows


def evaluate_set(model: SentimentModel, eval_set: EvalSet, reader: ImageTextReader | None,
                 batch_size: int = 64) -> dict[str, list[Scored]]:
    """Condition name -> rows; one condition ('as posted') except for the image set."""
    if eval_set.kind != "image":
        return {"as posted": score_condition(model, eval_set.items, reader, True, True, batch_size, eval_set.name)}
    results = {}
    for condition, (with_text, with_image, uses_ocr) in IMAGE_CONDITIONS.items():
        if condition == "image only" and reader is None:
            continue  # OCR switched off: the no-OCR row already says what the image alone gives
        results[condition] = score_condition(model, eval_set.items, reader if uses_ocr else None, with_text,
                                             with_image, batch_size, f"{eval_set.name} [{condition}]")
    return results


# -- output ---------------------------------------------------------------------------------------------------


def _row(name: str, metrics: dict[str, Any]) -> str:
    recall = [metrics["per_class"][label]["recall"] * 100 for label in SENTIMENT_LABELS]
    ece = f"{metrics['ece'] * 100:5.1f}" if "ece" in metrics else "    -"
    return (f"  {name:<10}{metrics['accuracy'] * 100:7.1f}{metrics['macro_f1'] * 100:8.1f}"
            f"{metrics['macro_recall'] * 100:8.1f}  " + " ".join(f"{r:5.1f}" for r in recall) + f"  {ece}")


def format_table(eval_set: EvalSet, results: dict[str, list[Scored]]) -> str:
    counts = eval_set.label_counts
    lines = [f"{eval_set.name} ({eval_set.kind}): {eval_set.description}",
             f"  n={len(eval_set.items)}  " + "  ".join(f"{k} {v}" for k, v in counts.items())
             + (f"  [{eval_set.notes}]" if eval_set.notes else "")]
    for condition, rows in results.items():
        if len(results) > 1:
            lines.append(f"  -- {condition}")
        lines.append(f"  {'scorer':<10}{'acc':>7}{'mF1':>8}{'mRec':>8}  {'R-neg':>5} {'R-neu':>5} {'R-pos':>5}  "
                     f"{'ECE':>5}")
        lines.extend(_row(row.scorer, row.metrics) for row in rows)
        model, best = rows[0].metrics["accuracy"], max(rows[1:], key=lambda r: r.metrics["accuracy"])
        lines.append(f"  model - best lexicon ({best.scorer}): {(model - best.metrics['accuracy']) * 100:+.1f} "
                     "points of accuracy")
    if eval_set.name == "tweeteval-test":
        ours = results["as posted"][0].metrics["macro_recall"] * 100
        published = ", ".join(f"{k} {v}" for k, v in PUBLISHED_TWEETEVAL.items())
        lines.append(f"  TweetEval metric (macro recall): model {ours:.1f}; published: {published}")
    return "\n".join(lines)


def umsab_summary(report: dict[str, Any]) -> dict[str, Any] | None:
    """The model's UMSAB test macro-F1 per language and averaged over the languages scored, beside the published
    figures (None when the report holds no UMSAB set)."""
    languages = {name.removeprefix("umsab-"): entry["results"]["as posted"]["model"]["macro_f1"] * 100
                 for name, entry in report["sets"].items() if name.startswith("umsab-")}
    if not languages:
        return None
    return {"metric": "macro-F1 (%), UMSAB test", "model": languages,
            "model_average": sum(languages.values()) / len(languages), "languages_averaged": len(languages),
            "published": {language: PUBLISHED_UMSAB.get(language, {}) for language in languages},
            "published_average": PUBLISHED_UMSAB_AVERAGE}


def format_umsab(summary: dict[str, Any]) -> str:
    """The UMSAB summary as a Markdown table (printed by `monitor eval`, appended to report.md)."""
    lines = [f"UMSAB test macro-F1 (%), model `{summary.get('checkpoint', '')}` beside the published figures:", "",
             "| language | model | published (XLM-T) |", "| --- | --- | --- |"]
    for language, value in summary["model"].items():
        published = summary["published"][language].get("XLM-T")
        lines.append(f"| {language} | {value:.1f} | {'-' if published is None else published} |")
    averaged = ", ".join(f"{k} {v}" for k, v in summary["published_average"].items())
    lines.append(f"| average of {summary['languages_averaged']} | {summary['model_average']:.1f} | {averaged} "
                 "(all 8 languages) |")
    return "\n".join(lines) + "\n"


def format_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables (for the model card): accuracy / macro-F1 / macro recall / ECE per scorer."""
    scorers = ["model", *lexicons.LEXICONS]
    lines = [f"Checkpoint `{report['checkpoint_name']}` ({report['model_version']}), OCR "
             f"{'on' if report['ocr'] else 'off'}, {report['date']}. Cells: accuracy / macro-F1 / macro recall "
             "(%); ECE for the model.", "",
             "| set | condition | n | " + " | ".join(scorers) + " | model - best lexicon | model ECE |",
             "| --- | --- | --- | " + " | ".join("---" for _ in scorers) + " | --- | --- |"]
    for name, entry in report["sets"].items():
        for condition, rows in entry["results"].items():
            cells = [f"{rows[s]['accuracy'] * 100:.1f} / {rows[s]['macro_f1'] * 100:.1f} / "
                     f"{rows[s]['macro_recall'] * 100:.1f}" for s in scorers]
            best = max(rows[s]["accuracy"] for s in scorers[1:])
            lines.append(f"| {name} | {condition} | {rows['model']['examples']} | " + " | ".join(cells)
                         + f" | {(rows['model']['accuracy'] - best) * 100:+.1f} | {rows['model']['ece'] * 100:.1f} |")
    lines += ["", "Evaluation sources (none is used for training or model selection):", "",
              "| set | package | version | file | items | sha256 | licence | texts also in training |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, entry in report["sets"].items():
        for source in entry["sources"]:
            overlap = entry.get("overlap_with_training")
            lines.append(f"| {name} | {source.get('package')} | {source.get('version')} | `{source.get('file')}` | "
                         f"{source.get('items')} | {(source.get('sha256') or '-')[:16]} | {source.get('licence')} | "
                         f"{'-' if overlap is None else overlap} |")
    return "\n".join(lines) + "\n"


def save_plots(report: dict[str, Any], out: Path) -> list[Path]:
    """One confusion matrix per set and condition for the model, and an accuracy overview of every set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    paths = []
    for name, entry in report["sets"].items():
        for condition, rows in entry["results"].items():
            model = rows["model"]
            suffix = "" if condition == "as posted" else "_" + condition.replace(" ", "-").replace(",", "")
            paths.append(save_confusion_png(model["confusion_matrix"], SENTIMENT_LABELS,
                                            out / f"confusion_{name}{suffix}.png",
                                            title=f"{name}{' ' + condition if suffix else ''} "
                                                  f"(n={model['examples']})"))
    names, scorers = [], ["model", *lexicons.LEXICONS]
    values = {scorer: [] for scorer in scorers}
    for name, entry in report["sets"].items():
        for condition, rows in entry["results"].items():
            names.append(name if condition == "as posted" else f"{name}\n{condition}")
            for scorer in scorers:
                values[scorer].append(rows[scorer]["accuracy"] * 100)
    figure, axes = plt.subplots(figsize=(max(8.0, 0.9 * len(names) + 2), 4.8))
    positions, width = np.arange(len(names)), 0.8 / len(scorers)
    for offset, scorer in enumerate(scorers):
        axes.bar(positions + (offset - (len(scorers) - 1) / 2) * width, values[scorer], width, label=scorer)
    axes.set_xticks(positions, names, rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("accuracy (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"{report['checkpoint_name']} against word lists, per evaluation set")
    axes.legend(ncols=len(scorers), fontsize=8, loc="upper right")
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    overview = out / "accuracy_by_set.png"
    figure.savefig(overview, dpi=110)
    plt.close(figure)
    return [overview, *paths]


def comparable(text: str) -> str:
    """Case- and space-insensitive form for finding the same text in two corpora."""
    return " ".join(text.lower().split())


def training_overlap(eval_set: EvalSet, training_texts: set[str]) -> int:
    """How many of the set's texts also occur, exactly, in the training data (leakage check)."""
    return sum(1 for item in eval_set.items if item.text and comparable(item.text) in training_texts)


def run_eval(model: SentimentModel, eval_sets: Sequence[EvalSet], out: Path, reader: ImageTextReader | None,
             checkpoint: str, batch_size: int = 64, echo=print,
             training_texts: set[str] | None = None) -> dict[str, Any]:
    """Score every set, print its table as soon as it is done, write report.json, report.md and the plots.
    With `training_texts` (see `comparable`), each set also reports how many of its texts training saw."""
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"checkpoint": checkpoint, "checkpoint_name": Path(checkpoint).name,
                              "model_version": model.version, "ocr": reader is not None,
                              "date": datetime.now(UTC).isoformat(timespec="seconds"), "sets": {}}
    for eval_set in eval_sets:
        started = time.perf_counter()
        results = evaluate_set(model, eval_set, reader, batch_size)
        overlap = training_overlap(eval_set, training_texts) if training_texts is not None else None
        echo(format_table(eval_set, results)
             + (f"\n  texts also in the training data: {overlap}" if overlap is not None else "") + "\n")
        report["sets"][eval_set.name] = {
            "kind": eval_set.kind, "description": eval_set.description, "notes": eval_set.notes,
            "label_counts": eval_set.label_counts, "sources": eval_set.sources,
            "seconds": round(time.perf_counter() - started, 1), "overlap_with_training": overlap,
            "results": {condition: {row.scorer: row.metrics for row in rows} for condition, rows in results.items()},
        }
    summary = umsab_summary(report)
    markdown = format_markdown(report)
    if summary is not None:
        report["umsab"] = {**summary, "checkpoint": report["checkpoint_name"]}
        echo(format_umsab(report["umsab"]))
        markdown += "\n" + format_umsab(report["umsab"])
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown)
    save_plots(report, out)
    return report
