"""Posts -> model inputs: the text encoder's tokenizer, image decoding/resizing, the image encoder's normalisation.

`encode_uint8` is the one place that builds a batch, for the worker and for training alike, so both see
exactly the same inputs; `normalise` finishes the images where the model runs (`encode` does both, on
the CPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer
from torch import Tensor

from workers.media.images import decode_image
from workers.radm.config import RADMConfig
from workers.radm.encoders import image_normalisation, load_tokenizer
from workers.radm.social_text import text_normaliser


class RADMProcessor:
    """Tokenises texts and normalises images for one `RADMConfig`."""

    def __init__(self, config: RADMConfig) -> None:
        self.config = config
        self.normalise_text = text_normaliser(config.text_normalisation)
        self.tokenizer = load_tokenizer(config.text_encoder)
        # The tokenizer's Rust core, truncating, one text at a time: cheaper than the transformers wrapper in
        # batches (`bench/exploratory/cpu_tokenize_ab.py`), with the same ids (tested). The worker's model process
        # tokenises every batch on the one thread that feeds the model.
        self.encoder = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())
        self.encoder.enable_truncation(config.max_text_tokens)
        self.encoder.no_padding()
        self.blank_ids = self.encoder.encode("").ids
        """A blank text's ids ([CLS] [SEP] for BERT), which `tokenize` masks out entirely."""
        self.pad_id: int = self.tokenizer.pad_token_id
        mean, std = image_normalisation(config)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        # (x / 255 - mean) / std as one multiply-add per pixel
        self.scale, self.shift = 1.0 / (255.0 * std_t), -mean_t / std_t

    def decode_image(self, data: bytes, max_pixels: int) -> np.ndarray:
        """Encoded bytes -> uint8 HWC at the model's size; raises BadInput (with a reason)."""
        return decode_image(data, self.config.image_size, max_pixels)

    def image_tensor(self, image: np.ndarray) -> Tensor:
        """One uint8 image, HWC RGB or HW grey, of any size -> normalised (3, S, S) float32."""
        # torch.tensor copies: decoded arrays (np.asarray of a PIL image) are often read-only
        return self.normalise(torch.tensor(self.model_size(image)).unsqueeze(0))[0]

    def model_size(self, image: np.ndarray) -> np.ndarray:
        """One uint8 image, HWC RGB or HW grey, of any size -> uint8 (S, S, 3) RGB.

        `decode_image` already gives S x S RGB; anything else (e.g. `np.asarray(PIL.Image.open(...))`
        in training) is converted and resized here.
        """
        if image.dtype != np.uint8:
            raise ValueError(f"images must be uint8 HWC or HW arrays, got {image.dtype} of shape {image.shape}")
        size = self.config.image_size
        if image.shape != (size, size, 3):
            image = np.asarray(Image.fromarray(image).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        return image

    def normalise(self, images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """uint8 (B, S, S, 3) -> the image encoder's normalised (B, 3, S, S) in `dtype` (computed in float32),
        on the images' device.

        Run where the model runs: on a GPU this moves a quarter of the bytes across PCIe and takes the
        per-pixel arithmetic off the host's CPU, which otherwise caps a GPU worker's posts/s.
        """
        pixels = images.permute(0, 3, 1, 2).contiguous().float()  # uint8 transpose first: cheaper on CPUs
        return pixels.mul_(self.scale.to(images.device)).add_(self.shift.to(images.device)).to(dtype)

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Truncate to max_text_tokens, pad to the batch's longest: input_ids and attention_mask (long, 1 = real
        token). A blank text gets the ids of an empty one and an all-zero mask: the model then treats the post
        as image-only instead of reading [CLS] [SEP] as content. Texts pass the checkpoint's normalisation first."""
        if self.normalise_text is not None:
            texts = [self.normalise_text(text) for text in texts]
        token_ids = [self.encoder.encode(text).ids if text.strip() else [] for text in texts]
        longest = max(len(ids) or len(self.blank_ids) for ids in token_ids)
        input_ids = np.full((len(texts), longest), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(texts), longest), dtype=np.int64)
        for row, ids in enumerate(token_ids):
            if ids:
                input_ids[row, :len(ids)] = ids
                attention_mask[row, :len(ids)] = 1
            else:
                input_ids[row, :len(self.blank_ids)] = self.blank_ids
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}

    def encode(self, texts: Sequence[str], images: Sequence[np.ndarray | None]) -> dict[str, Tensor]:
        """A batch ready for `model(**batch)`: input_ids, attention_mask (long, 1 = real token),
        pixel_values (float32, B x 3 x S x S; zeros where there is no image), has_image (bool)."""
        batch = self.encode_uint8(texts, images)
        pixel_values = self.normalise(batch.pop("images")).mul_(batch["has_image"].view(-1, 1, 1, 1))
        return {**batch, "pixel_values": pixel_values}

    def encode_uint8(self, texts: Sequence[str], images: Sequence[np.ndarray | None],
                     pin_memory: bool = False) -> dict[str, Tensor]:
        """`encode` with the images left as uint8 (B, S, S, 3) under `images` (zeros where there is none),
        for `normalise` to finish on the model's device.

        `pin_memory` builds the images straight into page-locked memory that CUDA copies from without
        staging. Its allocator reuses blocks, so a batch also skips the page faults of a fresh 38 MB
        buffer (256 images of 224 px), which cost more than the copying itself.
        """
        if len(texts) != len(images):
            raise ValueError(f"{len(texts)} texts but {len(images)} images")
        if not texts:
            raise ValueError("cannot encode an empty batch")
        size = self.config.image_size
        pixels = torch.empty((len(images), size, size, 3), dtype=torch.uint8, pin_memory=pin_memory)
        rows = pixels.numpy()
        has_image = torch.zeros(len(images), dtype=torch.bool)
        for row, image in enumerate(images):
            if image is None:
                rows[row] = 0
            else:
                rows[row] = self.model_size(image)
                has_image[row] = True
        return {**self.tokenize(texts), "images": pixels, "has_image": has_image}
