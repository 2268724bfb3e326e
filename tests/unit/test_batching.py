"""Length-bucketed inference: grouping rules, and the same probabilities as one padded forward pass."""

import numpy as np
import torch

from workers.inference.model import SentimentModel, length_buckets


def test_rows_go_to_power_of_two_buckets_and_pad_to_their_longest():
    lengths = [3, 9, 9, 30, 5, 12, 7, 33, 2, 16]
    groups = length_buckets(lengths, min_rows=1)
    assert sorted(row for rows, _ in groups for row in rows) == list(range(len(lengths)))
    assert {tuple(sorted(rows)): pad for rows, pad in groups} == {
        (0, 4, 6, 8): 7,      # <= 8 tokens
        (1, 2, 5, 9): 16,     # 9..16
        (3,): 30,             # 17..32
        (7,): 33,             # 33..64
    }


def test_small_groups_join_the_next_longer_one():
    lengths = [3, 4, 5, 6, 60, 61]
    groups = length_buckets(lengths, min_rows=4)
    assert [(sorted(rows), pad) for rows, pad in groups] == [([0, 1, 2, 3], 6), ([4, 5], 61)]
    assert length_buckets([50, 3], min_rows=4) == [([1, 0], 50)]


def test_blank_texts_keep_a_length_of_one():
    assert length_buckets([0, 0], min_rows=1) == [([0, 1], 1)]


def test_bucketed_probabilities_match_one_padded_batch():
    model = SentimentModel.load(None, "cpu")
    rng = np.random.default_rng(0)
    texts = ["ok", "", "this is a much longer post about the product " * 3, "fine thanks", "meh", "great " * 9]
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) if i % 2 else None for i in range(len(texts))]
    batch = model.processor.encode(texts, images)
    with torch.inference_mode():
        reference = torch.softmax(model.model(**batch), dim=-1)
    model.min_bucket_rows = 1
    torch.testing.assert_close(model.probabilities(batch), reference, atol=1e-5, rtol=1e-4)
    # the worker's form: uint8 images, normalised where the model runs
    raw = model.processor.encode_uint8(texts, images)
    assert raw["images"].dtype == torch.uint8 and raw["images"].shape[1:] == (32, 32, 3)
    torch.testing.assert_close(model.probabilities(raw), reference, atol=1e-5, rtol=1e-4)
    model.min_bucket_rows = 0  # the GPU default: one forward pass per batch
    torch.testing.assert_close(model.probabilities(raw), reference, atol=1e-5, rtol=1e-4)


def test_bf16_weights_give_the_float32_probabilities_within_bf16_rounding():
    """The GPU default (weights cast once to bf16, no autocast), run here on the CPU."""
    fp32 = SentimentModel.load(None, "cpu")
    bf16 = SentimentModel.load(None, "cpu", dtype=torch.bfloat16)
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    rng = np.random.default_rng(2)
    texts = ["fine", "", "the new phone is far better than the old one " * 2, "no", "bad battery", "ok " * 5]
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) if i % 3 else None for i in range(len(texts))]
    batch = fp32.processor.encode_uint8(texts, images)
    expected = fp32.probabilities(batch)
    got = bf16.probabilities(batch)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=3e-2, rtol=0)
    assert not torch.equal(got, expected)  # it really ran in bf16


def test_a_bf16_model_saves_a_float32_checkpoint(tmp_path):
    bf16 = SentimentModel.load(None, "cpu", dtype=torch.bfloat16)
    bf16.save(tmp_path / "radm.pt")
    weights = torch.load(tmp_path / "radm.pt", weights_only=True)["weights"]
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float32}


def test_large_models_get_every_core_small_ones_leave_one_for_the_pipeline(monkeypatch):
    import os

    from workers.inference.model import model_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert model_threads(torch.nn.Linear(10, 10)) == 7
    assert model_threads(torch.nn.Linear(1100, 1000)) == 7  # 1.1M: the tiny test model's size (its vocabulary)
    assert model_threads(torch.nn.Linear(6000, 1000)) == 8  # 6M parameters
    assert model_threads(torch.nn.Linear(10, 10), requested=3) == 3


def test_torch_compile_gives_the_eager_probabilities():
    """MODEL_COMPILE: inductor on the CPU (about a minute to compile here), dynamic shapes across length buckets."""
    compiled = SentimentModel.load(None, "cpu", compile=True)
    eager = SentimentModel.load(None, "cpu")
    rng = np.random.default_rng(1)
    texts = ["short", "a somewhat longer post about the product and its price " * 2, "ok then", "fine"]
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) if i % 2 else None for i in range(len(texts))]
    batch = eager.processor.encode(texts, images)
    torch.testing.assert_close(compiled.probabilities(batch), eager.probabilities(batch), atol=1e-5, rtol=1e-4)
