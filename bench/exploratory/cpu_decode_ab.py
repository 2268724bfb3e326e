# Ran on the 2-core VM, 2026-11-26: python bench/exploratory/cpu_decode_ab.py (medians of 7 interleaved rounds)
"""CPU time per image of the two JPEG decoders `workers.preprocess.decode_image` chooses between, on the
benchmarks' 224 px sample photos, at the tiny model's 32 px and the full model's 224 px."""
import itertools
import json
import statistics
import time

from monitor.samples import sample_images
from workers.preprocess import _decode_jpeg, _decode_with_pil

REPEATS = 1000
ROUNDS = 7


def cpu_ms_per_image(decode, image_size: int) -> float:
    images = itertools.cycle(sample_images())
    started = time.process_time()
    for _ in range(REPEATS):
        decode(next(images), image_size, 10**8)
    return (time.process_time() - started) * 1000 / REPEATS


for image_size in (32, 224):
    rounds = [(cpu_ms_per_image(_decode_with_pil, image_size), cpu_ms_per_image(_decode_jpeg, image_size))
              for _ in range(ROUNDS)]  # interleaved: this VM's speed drifts
    pil, turbo = statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)
    print(json.dumps({"image_size": image_size, "pil_ms": round(pil, 4), "simplejpeg_ms": round(turbo, 4),
                      "speedup": round(pil / turbo, 2)}))
