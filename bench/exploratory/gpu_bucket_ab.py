# Ran once on a lent H200, 2026-11-26, commit ee865cf (the eager default then used 4-row buckets on GPUs):
#   DEVICE=cuda python bench/exploratory/gpu_bucket_ab.py full-shapes 256 ab-gpu.json
# Results: bench/results/history/model-variants-gpu-ee865cf.json ("buckets"). Reproduce the buckets comparison with
# `monitor bench model --bucket-rows 4` against the GPU default (0).
"""GPU A/B of inference variants at one batch size, in one process (issue 8): buckets and torch.compile."""
import json
import os
import sys
import time
from pathlib import Path

import torch

from benchmarks.model import bench_posts, flops_per_post, load_model, posts_per_s

name, batch, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + float(os.environ.get("AB_SECONDS", "200"))
results = []

def measure(label, model, share):
    posts, decoded = bench_posts(model, 512, share)
    started = time.perf_counter()
    rate = posts_per_s(model, posts, decoded, batch, 3.0)
    row = {"variant": label, "image_share": share, "batch_size": batch, "posts_per_s": round(rate, 1),
           "seconds_incl_warmup": round(time.perf_counter() - started, 1)}
    if label == "eager, 4-row buckets":
        row["gflops_per_post"] = round(flops_per_post(model, posts, decoded, batch) / 1e9, 3)
    results.append(row)
    print(json.dumps(row), flush=True)
    Path(out).write_text(json.dumps(results, indent=1))

device = os.environ.get("DEVICE", "cuda")
eager = load_model(name, device)
for share in (0.5, 1.0):
    eager.min_bucket_rows = 4
    measure("eager, 4-row buckets", eager, share)
    eager.min_bucket_rows = batch
    measure("eager, one bucket", eager, share)
del eager
if device == "cuda":
    torch.cuda.empty_cache()
if time.monotonic() < deadline - 60:
    compiled = load_model(name, device, compile=True)
    for share in (0.5, 1.0):
        if time.monotonic() < deadline:
            compiled.min_bucket_rows = 4
            measure("compiled, 4-row buckets", compiled, share)
