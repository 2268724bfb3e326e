# Ran on the 2-core VM, 2026-11-26: commit 49e551e (git worktree at /tmp/wt-old) against 0b98735, e.g.
#   (cd /tmp/wt-old && PYTHONPATH=$PWD /work/main/.venv/bin/python /work/main/bench/exploratory/cpu_forward_ab.py)
# PYTHONPATH matters: the editable install would otherwise import the main checkout in both runs.
import time

from torch.utils.flop_counter import FlopCounterMode

from benchmarks.model import bench_posts, load_model

m = load_model("full-shapes", "cpu")
for share in (0.0, 0.5, 1.0):
    posts, dec = bench_posts(m, 8, share)
    batch = m.processor.encode_uint8([d[0] for d in dec], [d[1] for d in dec])
    c = FlopCounterMode(display=False)
    with c:
        m.probabilities(batch)
    m.probabilities(batch)
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < 6:
        m.probabilities(batch)
        n += 1
    dt = (time.perf_counter() - t) / n
    flops = c.get_total_flops()
    print(f"share {share}: images {int(batch['has_image'].sum())}/8, {flops / 8e9:.1f} GF/post, "
          f"{8 / dt:.2f} posts/s, {flops / dt / 1e9:.0f} GFLOP/s")
