"""RADMProcessor: the real tokenizer, image decoding/resizing/normalisation, a batch ready for model(**batch)."""

import io
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from schemas.reasons import BadInput  # noqa: E402
from workers.radm import RADM, RADMConfig  # noqa: E402
from workers.radm.encoders import image_normalisation  # noqa: E402
from workers.radm.processor import RADMProcessor  # noqa: E402

CONFIG = RADMConfig.tiny()


@pytest.fixture(scope="module")
def processor() -> RADMProcessor:
    return RADMProcessor(CONFIG)


def png(width: int, height: int, colour=(250, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_keys_dtypes_and_shapes(processor):
    image = processor.decode_image(png(50, 40), max_pixels=10_000)
    batch = processor.encode(["I love this brand", "meh"], [image, None])
    assert set(batch) == {"input_ids", "attention_mask", "pixel_values", "has_image"}
    assert batch["input_ids"].dtype == torch.long and batch["attention_mask"].dtype == torch.long
    assert batch["pixel_values"].dtype == torch.float32 and batch["has_image"].dtype == torch.bool
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["pixel_values"].shape == (2, 3, CONFIG.image_size, CONFIG.image_size)
    assert batch["has_image"].tolist() == [True, False]
    assert batch["pixel_values"][1].abs().sum() == 0


def test_uses_the_real_uncased_wordpiece_tokenizer(processor):
    batch = processor.encode(["Hello world", "hello"], [None, None])
    assert batch["input_ids"].tolist() == [[101, 7592, 2088, 102], [101, 7592, 102, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_truncates_to_max_text_tokens_and_pads_to_longest(processor):
    batch = processor.encode(["word " * 500, "short"], [None, None])
    assert batch["input_ids"].shape[1] == CONFIG.max_text_tokens
    assert batch["input_ids"][0, -1] == processor.tokenizer.sep_token_id
    assert batch["attention_mask"][1].sum() == 3


TRICKY_TEXTS = [
    "Hello world", "", "   ", "ok", "word " * 500, "Ünïcödé naïve café, ÀÉÎÕÜ", "emoji 🎉🔥 and 中文字符 mixed",
    "tabs\tand\nnewlines\r\n", "@acme #launch https://example.com/x?y=1", "a" * 300, "🙂" * 40, "\u200b zero width",
]


@pytest.mark.parametrize("config", [CONFIG, RADMConfig.full_shapes()], ids=["tiny", "full-shapes"])
def test_tokenize_gives_what_the_transformers_tokenizer_gives(config):
    """`tokenize` calls the tokenizer's Rust core and pads by itself: the batch must be the one the transformers
    wrapper builds, blank texts masked out."""
    processor = RADMProcessor(config)
    expected = processor.tokenizer(TRICKY_TEXTS, padding="longest", truncation=True,
                                   max_length=config.max_text_tokens, return_tensors="pt")
    batch = processor.tokenize(TRICKY_TEXTS)
    assert torch.equal(batch["input_ids"], expected["input_ids"].long())
    blank = torch.tensor([not text.strip() for text in TRICKY_TEXTS])
    assert torch.equal(batch["attention_mask"], expected["attention_mask"].long() * ~blank.view(-1, 1))
    assert blank.sum() == 2 and batch["attention_mask"][blank].sum() == 0


def test_blank_text_is_an_absent_modality(processor):
    batch = processor.encode(["", "   ", "ok"], [None, None, None])
    assert batch["attention_mask"].sum(1).tolist() == [0, 0, 3]


def test_normalises_with_the_encoders_statistics(processor):
    red = processor.decode_image(png(8, 8), max_pixels=10_000)
    pixels = processor.encode(["x"], [red])["pixel_values"][0]
    mean, std = image_normalisation(CONFIG)
    expected = (torch.tensor([250, 10, 10]) / 255 - torch.tensor(mean)) / torch.tensor(std)
    assert torch.allclose(pixels[:, 3, 3], expected, atol=1e-4)
    lite_mean, lite_std = image_normalisation(RADMConfig.bootstrap())
    assert lite_mean == (127 / 255,) * 3 and lite_std == (128 / 255,) * 3


def test_uint8_arrays_of_any_size_are_resized(processor):
    photo = np.zeros((90, 60, 3), dtype=np.uint8)
    grey = np.full((20, 30), 128, dtype=np.uint8)
    batch = processor.encode(["a", "b"], [photo, grey])
    assert batch["pixel_values"].shape[2:] == (CONFIG.image_size, CONFIG.image_size)
    assert batch["has_image"].all()


def test_decode_keeps_the_bomb_guard_and_reasons(processor):
    with pytest.raises(BadInput, match="exceeds limit"):
        processor.decode_image(png(300, 300), max_pixels=300 * 300 - 1)
    with pytest.raises(BadInput, match="undecodable image"):
        processor.decode_image(b"nope", max_pixels=10**6)


def test_rejects_mismatched_or_empty_batches(processor):
    with pytest.raises(ValueError, match="2 texts but 1 images"):
        processor.encode(["a", "b"], [None])
    with pytest.raises(ValueError, match="empty batch"):
        processor.encode([], [])


def test_batch_feeds_the_model(processor):
    torch.manual_seed(0)
    model = RADM(CONFIG).eval()
    image = processor.decode_image(png(64, 64), max_pixels=10**6)
    batch = processor.encode(["great", "", "awful day"], [image, image, None])
    logits = model(**batch)
    assert logits.shape == (3, CONFIG.num_labels) and torch.isfinite(logits).all()
