# Ran on the 2-core VM, 2026-11-26: python bench/exploratory/cpu_decode_ab.py (medians of 7 interleaved rounds)
"""CPU time per image of the two JPEG decoders `workers.media.images.decode_image` chooses between, on the
benchmarks' 224 px sample photos, at the tiny model's 32 px and the full model's 224 px; then images/s
with one and with two threads (a decoder that holds the GIL cannot use the second core)."""
import itertools
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from monitor.devstack.samples import sample_images
from workers.media.images import _decode_jpeg, _decode_with_pil

REPEATS = 1000
ROUNDS = 7
DECODERS = {"pil": _decode_with_pil, "simplejpeg": _decode_jpeg}


def cpu_ms_per_image(decode, image_size: int) -> float:
    images = itertools.cycle(sample_images())
    started = time.process_time()
    for _ in range(REPEATS):
        decode(next(images), image_size, 10**8)
    return (time.process_time() - started) * 1000 / REPEATS


def images_per_s(decode, image_size: int, threads: int) -> float:
    images = list(sample_images()) * 200
    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        list(pool.map(lambda part: [decode(image, image_size, 10**8) for image in part],
                      [images[i::threads] for i in range(threads)]))
        return len(images) / (time.perf_counter() - started)


for image_size in (32, 224):
    rounds = [(cpu_ms_per_image(_decode_with_pil, image_size), cpu_ms_per_image(_decode_jpeg, image_size))
              for _ in range(ROUNDS)]  # interleaved: this VM's speed drifts
    pil, turbo = statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)
    print(json.dumps({"image_size": image_size, "pil_ms": round(pil, 4), "simplejpeg_ms": round(turbo, 4),
                      "speedup": round(pil / turbo, 2)}))
for name, decode in DECODERS.items():
    print(json.dumps({"decoder": name, "image_size": 224,
                      **{f"images_per_s_{n}_threads": round(images_per_s(decode, 224, n)) for n in (1, 2)}}))
