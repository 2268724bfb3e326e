"""Per-post explanations on the seeded tiny model: words as written, completeness, modality balance."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest
import torch
from PIL import Image

from schemas import Post
from workers.explain import Explainer
from workers.explain.words import model_words
from workers.inference.model import SentimentModel
from workers.radm import RADM, RADMConfig
from workers.radm.social_text import normalise_social

TEXT = "I  love this\nnew phone, great!! meh"
"""Short enough for the tiny model's 16 tokens."""


def post(text: str = TEXT, image: bytes | None = None) -> Post:
    return Post(post_id="p1", created_at=datetime(2026, 1, 1, tzinfo=UTC), text=text, image=image)


def jpeg(seed: int = 0) -> bytes:
    pixels = (np.random.default_rng(seed).random((48, 48, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    return Explainer(SentimentModel.load("untrained", "cpu"))


def test_every_word_as_written(explainer: Explainer) -> None:
    words = explainer.explain(post()).words
    assert [w.text for w in words] == TEXT.split()
    assert all(TEXT[w.start:w.end] == w.text for w in words)
    assert all(w.tokens >= 1 for w in words)
    assert max(abs(w.attribution) for w in words) == pytest.approx(1.0)
    assert all(-1.0 <= w.attribution <= 1.0 for w in words)


def test_label_and_probabilities_are_the_workers(explainer: Explainer) -> None:
    for image in (None, jpeg()):
        explained = explainer.explain(post(image=image))
        model = explainer.model
        (result,) = model.predict([post(image=image)], [model.decode(post(image=image), 10**8)])
        assert explained.label == result.label.value
        assert explained.probabilities == pytest.approx({k.value: v for k, v in result.probabilities.items()},
                                                        abs=1e-5)


def test_completeness(explainer: Explainer) -> None:
    """The raw attributions add up to the label logit's change from the all-[MASK] baseline, within Captum's
    delta; the change is recomputed here from the model itself."""
    explained = explainer.explain(post())
    raw = sum(w.attribution for w in explained.words) * explained.scale
    assert raw - explained.logit_change == pytest.approx(explained.convergence_delta, abs=1e-4)
    assert abs(explained.convergence_delta) < 0.05 * max(abs(explained.logit_change), 1e-3) + 1e-4
    model, processor = explainer.model, explainer.model.processor
    encoding = processor.encoder.encode(TEXT)
    ids = torch.tensor([encoding.ids])
    special = torch.tensor([encoding.special_tokens_mask], dtype=torch.bool)
    baseline = torch.where(special, ids, torch.full_like(ids, processor.tokenizer.mask_token_id))
    size = model.config.image_size
    with torch.no_grad():
        logits = model.model(torch.cat([ids, baseline]), torch.ones(2, ids.shape[1], dtype=torch.long),
                             torch.zeros(2, 3, size, size), torch.zeros(2, dtype=torch.bool))
    target = [label.value for label in model.labels].index(explained.label)
    assert explained.logit_change == pytest.approx(float(logits[0, target] - logits[1, target]), abs=1e-5)


def test_text_only_post_has_no_modality_block(explainer: Explainer) -> None:
    assert explainer.explain(post()).modality is None


def test_modality_balance_with_an_image(explainer: Explainer) -> None:
    explained = explainer.explain(post(image=jpeg()))
    balance = explained.modality
    assert balance is not None
    assert balance.both == pytest.approx(explained.probabilities[explained.label])
    assert 0.0 <= balance.text_only <= 1.0 and 0.0 <= balance.image_only <= 1.0
    assert balance.image_text_disagree == (balance.text_label != balance.image_label)
    text_alone = explainer.explain(post())
    assert balance.text_only == pytest.approx(text_alone.probabilities[explained.label], abs=1e-5)
    assert [w.text for w in explained.words] == TEXT.split()


def test_image_only_post(explainer: Explainer) -> None:
    explained = explainer.explain(post(text="", image=jpeg()))
    assert explained.words == [] and explained.modality is None and explained.label in explained.probabilities


def test_deterministic(explainer: Explainer) -> None:
    assert explainer.explain(post(image=jpeg(1))) == explainer.explain(post(image=jpeg(1)))


def test_words_past_the_token_limit_have_no_attribution(explainer: Explainer) -> None:
    text = " ".join(f"word{i}" for i in range(40))  # the tiny model reads 16 tokens
    explained = explainer.explain(post(text))
    assert explained.truncated
    assert [w.text for w in explained.words] == text.split()
    assert explained.words[-1].tokens == 0 and explained.words[-1].attribution == 0.0
    assert explained.words[1].tokens > 0


@pytest.mark.parametrize("text", [
    "Loving the new @Acme phone 😍😍 #BestDayEver https://t.co/abc sooooo good!!!! :)",
    "😡 worst. service. ever #fail",
    "  spaced\tout\n\ntext  ",
    "👍",
])
def test_word_by_word_normalisation_is_the_workers(text: str) -> None:
    words = model_words(text, normalise_social)
    assert words.text == normalise_social(text)
    assert [text[s:e] for s, e in words.spans] == text.split()
    for (start, end), piece in zip(words.model_spans, text.split(), strict=True):
        assert words.text[start:end] == normalise_social(piece)


def test_social_normalisation_maps_pieces_back_to_the_post() -> None:
    torch.manual_seed(0)
    config = RADMConfig.tiny(text_normalisation="social-1")
    explainer = Explainer(SentimentModel(RADM(config), torch.device("cpu"), "tiny-social"))
    text = "new phone 😍 #BestDay"
    words = explainer.explain(post(text)).words
    assert [w.text for w in words] == ["new", "phone", "😍", "#BestDay"]
    assert [w.tokens for w in words][2:] == [len(explainer.model.processor.encoder.encode(p).ids) - 2
                                             for p in ("smiling face with heart-eyes", "best day")]
