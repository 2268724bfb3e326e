"""Posts -> model inputs: the text encoder's tokenizer, image decoding/resizing, the image encoder's normalisation.

`encode` is the one place that builds a batch, for the worker and for training alike, so both see
exactly the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from workers.preprocess import decode_image
from workers.radm.config import RADMConfig
from workers.radm.encoders import image_normalisation, load_tokenizer


class RADMProcessor:
    """Tokenises texts and normalises images for one `RADMConfig`."""

    def __init__(self, config: RADMConfig) -> None:
        self.config = config
        self.tokenizer = load_tokenizer(config.text_encoder)
        mean, std = image_normalisation(config)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def decode_image(self, data: bytes, max_pixels: int) -> np.ndarray:
        """Encoded bytes -> uint8 HWC at the model's size; raises BadInput (with a reason)."""
        return decode_image(data, self.config.image_size, max_pixels)

    def image_tensor(self, image: np.ndarray) -> Tensor:
        """One uint8 image, HWC RGB or HW grey, of any size -> normalised (3, S, S) float32.

        `decode_image` already gives S x S RGB; anything else (e.g. `np.asarray(PIL.Image.open(...))`
        in training) is converted and resized here first.
        """
        if image.dtype != np.uint8:
            raise ValueError(f"images must be uint8 HWC or HW arrays, got {image.dtype} of shape {image.shape}")
        size = self.config.image_size
        if image.shape != (size, size, 3):
            image = np.asarray(Image.fromarray(image).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        pixels = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1).div_(255.0)
        return (pixels - self.mean) / self.std

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Truncate to max_text_tokens, pad to the batch's longest. A blank text gets an all-zero mask:
        the model then treats the post as image-only instead of reading [CLS] [SEP] as content."""
        batch = self.tokenizer(list(texts), padding="longest", truncation=True, max_length=self.config.max_text_tokens,
                               return_tensors="pt", return_token_type_ids=False)
        attention_mask = batch["attention_mask"].long()
        blank = torch.tensor([not text.strip() for text in texts], dtype=torch.bool)
        attention_mask[blank] = 0
        return {"input_ids": batch["input_ids"].long(), "attention_mask": attention_mask}

    def encode(self, texts: Sequence[str], images: Sequence[np.ndarray | None]) -> dict[str, Tensor]:
        """A batch ready for `model(**batch)`: input_ids, attention_mask (long, 1 = real token),
        pixel_values (float32, B x 3 x S x S; zeros where there is no image), has_image (bool)."""
        if len(texts) != len(images):
            raise ValueError(f"{len(texts)} texts but {len(images)} images")
        if not texts:
            raise ValueError("cannot encode an empty batch")
        size = self.config.image_size
        pixel_values = torch.zeros(len(images), 3, size, size)
        has_image = torch.zeros(len(images), dtype=torch.bool)
        for row, image in enumerate(images):
            if image is not None:
                pixel_values[row] = self.image_tensor(image)
                has_image[row] = True
        return {**self.tokenize(texts), "pixel_values": pixel_values, "has_image": has_image}
