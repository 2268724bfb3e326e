"""The CPU fast path: RADM exported to ONNX gives PyTorch's labels and (nearly) its probabilities, for every mix of
posts (with and without images, blank texts, any batch size and length), a stale export is refused, and the
worker's runtime switch picks what MODEL_RUNTIME says."""

import json

import numpy as np
import pytest
import torch

from core.settings import ModelSettings
from workers.inference.model import SentimentModel
from workers.inference.onnx_cache import (
    StaleExport,
    checkpoint_config,
    ensure_export,
    fingerprint,
    fingerprint_key,
    load_export,
    read_export,
)
from workers.inference.onnx_model import OnnxSentimentModel
from workers.inference.onnx_parity import MIN_AGREEMENT, compare, probe_posts
from workers.inference.predictor import Predictor
from workers.inference.runtime import load_worker_model, use_onnx
from workers.radm import RADM, RADMConfig


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny, randomly initialised RADM saved as a checkpoint file (ViT image encoder, as the full preset)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    RADM(RADMConfig.tiny()).save(path)
    return path


@pytest.fixture(scope="module")
def export(checkpoint, tmp_path_factory):
    return ensure_export(checkpoint, tmp_path_factory.mktemp("onnx"), threads=1)


@pytest.fixture(scope="module")
def reference(checkpoint):
    return SentimentModel.load(checkpoint, "cpu")


def _scores(model, posts):
    return np.asarray(model.score(posts))


@pytest.mark.parametrize("precision, max_diff, min_agreement", [("fp32", 1e-4, 1.0), ("int8", 0.05, MIN_AGREEMENT)])
def test_parity_on_synthetic_posts(export, reference, precision, max_diff, min_agreement):
    """Forty posts unlike the export's probe (another seed), half with an image, every eighth text blank."""
    posts = probe_posts(reference.config.image_size, count=40, seed=5)
    onnx = load_export(export, precision, threads=1)
    parity = compare(reference.score(posts), onnx.score(posts))
    assert parity.agreement >= min_agreement, parity
    assert parity.max_abs_diff <= max_diff, parity
    assert export.parity(precision).holds


@pytest.mark.parametrize("mix", ["all images", "no images", "one post", "blank texts", "long texts"])
def test_every_batch_shape_matches_torch(export, reference, mix):
    """The graphs were traced on two posts of eight tokens: other batch sizes, lengths and mixes must not be
    frozen into them; a post without text or without an image is masked as in PyTorch."""
    size = reference.config.image_size
    posts = probe_posts(size, count=24, seed=9, image_share=0.5)
    image = probe_posts(size, count=1, seed=1, image_share=1.0)[0][1]
    posts = {
        "all images": [(text, image) for text, _ in posts],
        "no images": [(text, None) for text, _ in posts],
        "one post": posts[:1],
        "blank texts": [("", image), ("", None), ("  ", image), ("fine", None)],
        "long texts": [("word " * 200, image if i % 2 else None) for i in range(5)],
    }[mix]
    onnx = load_export(export, "fp32", threads=1)
    onnx.min_bucket_rows = 1  # every length bucket its own pass: more graph calls of odd shapes
    np.testing.assert_allclose(_scores(onnx, posts), _scores(reference, posts), atol=1e-5)


def test_a_stale_export_is_refused(checkpoint, export, tmp_path):
    """A checkpoint retrained at the same path gets a fresh export, never the old graphs."""
    config = checkpoint_config(checkpoint)
    assert read_export(export.folder, fingerprint(checkpoint, config)).folder == export.folder
    torch.manual_seed(2)
    retrained = tmp_path / "tiny.pt"
    RADM(RADMConfig.tiny()).save(retrained)
    newer = fingerprint(retrained, config)
    assert newer["checkpoint_sha256"] != export.manifest["fingerprint"]["checkpoint_sha256"]
    with pytest.raises(StaleExport):
        read_export(export.folder, newer)
    assert fingerprint_key(newer) != export.folder.name
    with pytest.raises(StaleExport):
        read_export(tmp_path, newer)  # no manifest at all
    manifest = json.loads((export.folder / "manifest.json").read_text())
    assert manifest["fingerprint"]["config"] == config.to_dict()
    assert set(manifest["probe"]) == {"fp32", "int8"}


def test_runtime_switch(checkpoint, export):
    assert not use_onnx(ModelSettings(checkpoint="untrained", device="cpu"))  # auto: the tests' torch model
    assert use_onnx(ModelSettings(checkpoint=str(checkpoint), device="cpu"))
    assert not use_onnx(ModelSettings(checkpoint=str(checkpoint), device="cpu", runtime="torch"))
    assert use_onnx(ModelSettings(checkpoint="untrained", device="cpu", runtime="onnx"))
    if not torch.cuda.is_available():
        assert not use_onnx(ModelSettings(checkpoint=str(checkpoint), device="cuda", runtime="auto"))
    with pytest.raises(ValueError, match="CPU"):
        use_onnx(ModelSettings(checkpoint=str(checkpoint), device="cuda", runtime="onnx"))


def test_the_worker_loads_the_export(checkpoint, export):
    """Under MODEL_RUNTIME=auto on a CPU the worker gets the cached export (no second export), as a Predictor."""
    settings = ModelSettings(checkpoint=str(checkpoint), device="cpu", onnx_cache=export.folder.parent,
                             onnx_precision="fp32", threads=1)
    model = load_worker_model(settings)
    assert isinstance(model, OnnxSentimentModel) and isinstance(model, Predictor)
    assert model.runtime == "onnx-fp32" and model.folder == export.folder
    assert model.labels == SentimentModel.load(checkpoint, "cpu").labels
    assert isinstance(load_worker_model(ModelSettings(checkpoint=str(checkpoint), device="cpu", runtime="torch")),
                      SentimentModel)
