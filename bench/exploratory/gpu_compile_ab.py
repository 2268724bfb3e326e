# Ran once on a lent H200, 2026-11-26, commit ee865cf, right after gpu_bucket_ab.py:
#   python bench/exploratory/gpu_compile_ab.py compile-ab.json 190
# Results: bench/results/history/model-variants-gpu-ee865cf.json ("compile"). "mfu" uses the 4-row-bucket
# FLOP count (37.694 GFLOP per post); one bucket pads texts to the longest, so it is a slight undercount.
"""GPU A/B: eager vs torch.compile (dynamic) vs compile with CUDA graphs, one bucket, batch 256, image share 0.5."""
import json
import sys
import time
from pathlib import Path

import torch

from benchmarks.model import bench_posts, load_model, posts_per_s

out, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
results = []
model = load_model("full-shapes", "cuda")
model.min_bucket_rows = 256
posts, decoded = bench_posts(model, 256, 0.5)
for label, forward in [("eager", model.model),
                       ("compile dynamic", torch.compile(model.model, dynamic=True)),
                       ("compile reduce-overhead static",
                        torch.compile(model.model, dynamic=False, mode="reduce-overhead"))]:
    if time.monotonic() > deadline:
        break
    model.forward = forward
    started = time.perf_counter()
    rate = posts_per_s(model, posts, decoded, 256, 3.0)
    results.append({"variant": label, "posts_per_s": round(rate, 1), "mfu": round(rate * 37.694e9 / 989e12, 4),
                    "seconds_incl_warmup": round(time.perf_counter() - started, 1)})
    print(json.dumps(results[-1]), flush=True)
    Path(out).write_text(json.dumps(results, indent=1))
    torch._dynamo.reset()
