# FLOP counts of the bootstrap checkpoint per post, text only and half with a photo (run as cpu_forward_ab.py):
#   PYTHONPATH=$PWD python bench/exploratory/cpu_flops.py bootstrap
import sys

from benchmarks.model import bench_posts, flops_per_post, load_model

m = load_model(sys.argv[1], "cpu")
for share in (0.0, 0.5):
    posts, dec = bench_posts(m, 32, share)
    print(sys.argv[1], share, round(flops_per_post(m, posts, dec, 32) / 1e9, 3), "GF/post")
