"""`monitor bench ocr`: what reading the text in an image costs per image, against scoring a post.

The worker benchmark's photos repeat, and the worker reads each distinct image once, so its OCR cost
there is near zero. Here every image is distinct: sample photos cropped differently (no text: the
detector's cost alone) and the same photos with a caption rendered on them (detection plus
recognition). The baseline, measured in the same run on the same cores, is the model scoring one
post (text and photo) in a batch of 32.
"""

from __future__ import annotations

import io
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.report import device_name, host_info, write_report

CAPTIONS = ("Worst customer service I have ever had", "Absolutely love the new update",
            "The battery died after two hours", "Best coffee in town, thank you")


def distinct_photos(count: int, seed: int = 11) -> list[bytes]:
    """`count` different 480 px JPEG crops of scikit-image sample photos."""
    from skimage import data

    rng = random.Random(seed)
    sources = [Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
               for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")]
    photos = []
    for _ in range(count):
        image = rng.choice(sources)
        side = int(min(image.size) * rng.uniform(0.6, 1.0))
        left, top = rng.randint(0, image.width - side), rng.randint(0, image.height - side)
        buffer = io.BytesIO()
        image.crop((left, top, left + side, top + side)).resize((480, 480)).save(buffer, "JPEG", quality=88)
        photos.append(buffer.getvalue())
    return photos


def ms_per_image(images: list[bytes]) -> float:
    from workers.enrich.ocr import ImageTextReader, read_image_text

    reader = ImageTextReader()
    read_image_text(reader, images[0], 40_000_000)  # warm-up (session start), not counted
    started = time.perf_counter()
    for image in images[1:]:
        read_image_text(reader, image, 40_000_000)
    return (time.perf_counter() - started) * 1000 / max(1, len(images) - 1)


def model_ms_per_post(model_name: str, images: list[bytes], batch_size: int = 32) -> float:
    from benchmarks.model import load_model
    from schemas import Post

    model = load_model(model_name, "cpu")
    now = datetime.now(UTC)
    posts = [Post(post_id=str(i), created_at=now, text=CAPTIONS[i % len(CAPTIONS)], image=image)
             for i, image in enumerate(images[:batch_size])]
    decoded = [model.decode(post, 40_000_000) for post in posts]
    model.score(decoded)  # warm-up
    started, rounds = time.perf_counter(), 3
    for _ in range(rounds):
        model.score(decoded)
    return (time.perf_counter() - started) * 1000 / (rounds * len(decoded))


def run_ocr_benchmark(images: int, model_name: str, out: Path | None) -> dict:
    from workers.evaluation.render import render_text_photo

    plain = distinct_photos(images)
    captioned = [render_text_photo(CAPTIONS[i % len(CAPTIONS)], i, seed=13) for i in range(images)]
    report = {
        "benchmark": "ocr", "command": f"monitor bench ocr --images {images} --model {model_name}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "device": device_name(), "host": host_info(),
        "images": images,
        "ms_per_image_without_text": round(ms_per_image(plain), 1),
        "ms_per_image_with_text": round(ms_per_image(captioned), 1),
        "model": model_name, "model_ms_per_post": round(model_ms_per_post(model_name, plain), 1),
    }
    for kind in ("without_text", "with_text"):
        report[f"ocr_{kind}_vs_model"] = round(report[f"ms_per_image_{kind}"] / report["model_ms_per_post"], 2)
    write_report(report, out)
    return report
