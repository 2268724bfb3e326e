# Ran on the 2-core VM, 2026-11-26: python bench/exploratory/cpu_thumbnail.py (medians of 7 interleaved rounds)
"""CPU time per image of what the worker's decode threads do for a post with an inline image, without and with
the dashboard thumbnail (`upright_aspect` + `thumbnail_jpeg`, WORKER_THUMBNAIL_PX=96), on the benchmarks'
224 px sample photos at the tiny model's 32 px and the full model's 224 px; and the thumbnails' sizes."""
import itertools
import json
import statistics
import time

from monitor.devstack.samples import sample_images
from workers.media.images import decode_image, thumbnail_jpeg, upright_aspect

REPEATS = 1000
ROUNDS = 7
THUMBNAIL_PX = 96


def decode(data: bytes, image_size: int) -> None:
    decode_image(data, image_size, 10**8)


def decode_and_thumbnail(data: bytes, image_size: int) -> bytes:
    return thumbnail_jpeg(decode_image(data, image_size, 10**8), upright_aspect(data), THUMBNAIL_PX)


def cpu_ms_per_image(work, image_size: int) -> float:
    images = itertools.cycle(sample_images())
    started = time.process_time()
    for _ in range(REPEATS):
        work(next(images), image_size)
    return (time.process_time() - started) * 1000 / REPEATS


for image_size in (32, 224):
    rounds = [(cpu_ms_per_image(decode, image_size), cpu_ms_per_image(decode_and_thumbnail, image_size))
              for _ in range(ROUNDS)]  # interleaved: this VM's speed drifts
    alone, both = statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)
    sizes = [len(decode_and_thumbnail(data, image_size)) for data in sample_images()]
    print(json.dumps({"image_size": image_size, "decode_ms": round(alone, 4), "with_thumbnail_ms": round(both, 4),
                      "thumbnail_ms": round(both - alone, 4), "ratio": round(both / alone, 2),
                      "thumbnail_bytes": [min(sizes), max(sizes)]}))
