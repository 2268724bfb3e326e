# Ran on the 2-core VM, 2026-11-26, interleaved old/new pairs as in cpu_forward_ab.py:
#   PYTHONPATH=$PWD python bench/exploratory/cpu_model_ab.py bootstrap 0.5 32 8   (and untrained)
"""CPU A/B of RADM model-alone posts/s on a small sample (run from the checkout to measure)."""
import json
import sys

from benchmarks.model import bench_posts, load_model, posts_per_s

name, share, batch, seconds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
model = load_model(name, "cpu")
posts, decoded = bench_posts(model, 4 * batch, share)
rate = posts_per_s(model, posts, decoded, batch, seconds)
print(json.dumps({"model": name, "share": share, "batch": batch, "posts_per_s": round(rate, 2)}))
