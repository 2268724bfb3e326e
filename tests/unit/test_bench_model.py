"""`monitor bench model` times the model the way the model process drives it."""

from benchmarks.model import bench_posts, posts_per_s

from .model_helpers import RecordingModel


def test_on_a_gpu_each_batch_is_started_before_the_one_ahead_is_collected_and_every_batch_is_collected():
    model = RecordingModel(overlap=True)
    posts, decoded = bench_posts(model, 8, image_share=0.5)
    assert posts_per_s(model, posts, decoded, batch_size=4, min_seconds=0.0, min_posts=12) > 0
    timed = [event.split()[0] for event in model.events[4:]]  # after the warm-up's two predicts
    assert timed == ["start", "start", "collect", "start", "collect", "collect"]


def test_on_a_cpu_each_batch_is_collected_before_the_next_is_started():
    model = RecordingModel(overlap=False)
    posts, decoded = bench_posts(model, 8, image_share=0.5)
    posts_per_s(model, posts, decoded, batch_size=4, min_seconds=0.0, min_posts=12)
    assert [event.split()[0] for event in model.events[4:]] == ["start", "collect"] * 3
