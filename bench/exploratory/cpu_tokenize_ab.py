# Ran on the 2-core VM, 2026-11-26: commit 3bcd48d (git worktree at /tmp/wt-old) against c08fd93, e.g.
#   (cd /tmp/wt-old && PYTHONPATH=$PWD /work/main/.venv/bin/python /work/main/bench/exploratory/cpu_tokenize_ab.py tiny)
# Best of five passes over 4,096 sample texts, in batches of 32: 28.1-29.6 us a text through the transformers
# wrapper, 22.1-22.6 through the tokenizer's Rust core (tiny; full_shapes 29.4 against 22.2).
import sys
import time
from datetime import UTC, datetime

from monitor.devstack.samples import sample_posts
from workers.radm import RADMConfig
from workers.radm.processor import RADMProcessor

processor = RADMProcessor(getattr(RADMConfig, sys.argv[1] if len(sys.argv) > 1 else "tiny")())
texts = [post.text for post in sample_posts(4096, seed=3, start=datetime(2026, 1, 1, tzinfo=UTC), image_share=0.0)]
best = float("inf")
for _ in range(5):
    started = time.perf_counter()
    for i in range(0, len(texts), 32):
        processor.tokenize(texts[i:i + 32])
    best = min(best, (time.perf_counter() - started) / len(texts) * 1e6)
print(f"tokenize, batches of 32: {best:.1f} us a text")
