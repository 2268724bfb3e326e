"""RADM.save / RADM.load: self-describing checkpoints that leave frozen pretrained encoders out."""

import hashlib
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from workers.inference.model import SentimentModel  # noqa: E402
from workers.radm import RADM, RADMConfig  # noqa: E402


def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return {"input_ids": torch.randint(1000, 5000, (2, 5), generator=generator),
            "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
            "pixel_values": torch.randn(2, 3, 32, 32, generator=generator),
            "has_image": torch.tensor([True, False])}


def build(config: RADMConfig) -> RADM:
    torch.manual_seed(0)
    model = RADM(config).eval()
    with torch.no_grad():  # move trainable weights off the seeded init, so a reload that re-inits is caught
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01 * torch.randn_like(parameter))
    return model


def test_round_trip_restores_config_and_logits(tmp_path):
    model = build(RADMConfig.tiny(rm_c=True))
    model.save(tmp_path / "radm.pt")
    loaded = RADM.load(tmp_path / "radm.pt", map_location="cpu")
    assert loaded.config == model.config and not loaded.training
    assert torch.equal(model(**batch()), loaded(**batch()))
    stored = torch.load(tmp_path / "radm.pt", weights_only=True)
    assert any(key.startswith("text_encoder.") for key in stored["weights"])  # random encoders are stored


def test_frozen_pretrained_text_encoder_is_not_stored(tmp_path):
    config = RADMConfig.tiny(text_encoder_overrides=None, freeze_text_encoder=True)  # real MiniLM, frozen
    model = build(config)
    model.save(tmp_path / "radm.pt")
    stored = torch.load(tmp_path / "radm.pt", weights_only=True)
    assert stored["excluded"] == ["text_encoder."]
    assert not any(key.startswith("text_encoder.") for key in stored["weights"])
    assert any(key.startswith("image_encoder.") for key in stored["weights"])
    assert (tmp_path / "radm.pt").stat().st_size < 10 * 2**20  # MiniLM alone is ~90 MB
    loaded = RADM.load(tmp_path / "radm.pt")
    assert torch.allclose(model(**batch()), loaded(**batch()), atol=1e-6)


def test_load_refuses_checkpoints_that_do_not_fit(tmp_path):
    model = build(RADMConfig.tiny())
    model.save(tmp_path / "radm.pt")
    state = torch.load(tmp_path / "radm.pt", weights_only=True)
    del state["weights"]["classifier.1.weight"]
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="missing"):
        RADM.load(tmp_path / "broken.pt")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a RADM checkpoint"):
        RADM.load(tmp_path / "other.pt")


def test_sentiment_model_loads_a_checkpoint_path(tmp_path):
    model = build(RADMConfig.tiny(version="radm-test-7"))
    model.save(tmp_path / "checkpoints" / "bootstrap.pt")
    worker_model = SentimentModel.load(tmp_path / "checkpoints" / "bootstrap.pt", device="cpu")
    sha = hashlib.sha256((tmp_path / "checkpoints" / "bootstrap.pt").read_bytes()).hexdigest()
    assert worker_model.version == f"radm-test-7@{sha[:12]}"
    assert torch.equal(worker_model.model(**batch()), model(**batch()))
    worker_model.save(tmp_path / "again.pt")
    again = SentimentModel.load(str(tmp_path / "again.pt"), device="cpu")
    assert again.config == model.config
    assert again.version != worker_model.version  # same config version, other file: another model id
    assert again.version.startswith("radm-test-7@")


def test_worker_refuses_non_sentiment_checkpoints(tmp_path):
    emotions = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
    build(RADMConfig.tiny(num_labels=6, labels=emotions)).save(tmp_path / "msed.pt")
    with pytest.raises(ValueError, match="not sentiment labels"):
        SentimentModel.load(tmp_path / "msed.pt", device="cpu")


def test_checkpoint_from_before_normalisation_and_temperature_still_loads(tmp_path):
    """Checkpoints written before `text_normalisation`, `freeze_text_embeddings` and `temperature` existed carry
    configs without them: they load with the old behaviour (raw text, T = 1)."""
    model = build(RADMConfig.tiny())
    model.save(tmp_path / "old.pt")
    state = torch.load(tmp_path / "old.pt", weights_only=True)
    for field in ("text_normalisation", "freeze_text_embeddings", "temperature"):
        del state["config"][field]
    torch.save(state, tmp_path / "old.pt")
    loaded = RADM.load(tmp_path / "old.pt")
    assert loaded.config.text_normalisation is None and loaded.config.temperature == 1.0
    assert torch.equal(model(**batch()), loaded(**batch()))


def test_temperature_divides_the_logits_the_worker_turns_into_probabilities(tmp_path):
    model = build(RADMConfig.tiny())
    sharp = SentimentModel(model, torch.device("cpu"), "t1")
    soft = SentimentModel(build(RADMConfig.tiny(temperature=4.0)), torch.device("cpu"), "t4")
    decoded = [("what a day", None), ("fine", None)]
    hot, cool = torch.tensor(sharp.score(decoded)), torch.tensor(soft.score(decoded))
    assert torch.equal(hot.argmax(-1), cool.argmax(-1))
    assert (cool.max(-1).values <= hot.max(-1).values + 1e-6).all()
