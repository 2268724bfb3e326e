# Time per explanation (workers.explain) on the CPU, e.g.
#   PYTHONPATH=$PWD /work/main/.venv/bin/python bench/exploratory/cpu_explain.py bootstrap
# Sample posts from the demo generator, with and without an image: median and worst seconds per post after one
# warm-up of each kind, and the process's peak resident memory (the API process holds the same model).
# Ran on the shared 2-core VM, 2026-12-06 (load average 3-4 from other work): bootstrap text only median 0.23 s
# (worst 0.24), image+text median 0.44-0.76 s, single posts up to several seconds while the cores were taken;
# 560 MiB resident before loading (torch, transformers, captum), about 1.2 GiB peak after explaining.
import resource
import statistics
import sys
import time
from datetime import UTC, datetime

from monitor.devstack.samples import sample_posts
from workers.explain import Explainer

print(f"RSS before loading {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
explainer = Explainer.load(sys.argv[1] if len(sys.argv) > 1 else "bootstrap", "cpu")
posts = list(sample_posts(24, seed=3, start=datetime(2026, 1, 1, tzinfo=UTC), image_share=0.5))
print(f"peak RSS once loaded {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
for warm in (False, True):  # one of each: the image encoder's first call sets up its kernels
    explainer.explain(next(p for p in posts if (p.image is not None) == warm))
for with_image in (False, True):
    chosen = [p for p in posts if (p.image is not None) == with_image][:8]
    times = []
    for post in chosen:
        started = time.perf_counter()
        explainer.explain(post)
        times.append(time.perf_counter() - started)
    print(f"{'image+text' if with_image else 'text only'}: {len(times)} posts, median {statistics.median(times):.3f} s,"
          f" worst {max(times):.3f} s")
print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
