"""Sample posts for the demo and tests: templated texts about a few brands, real photos from scikit-image.

They are samples, not real social data: the demo says so when it publishes them.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache

from PIL import Image

from schemas import Post

BRANDS = ("acme", "globex", "initech")
_TEXTS = {
    "positive": ["I absolutely love my new {b} phone, best purchase this year!",
                 "Great service from {b} today, thank you so much",
                 "{b} nailed it again, fantastic quality and fast delivery :)"],
    "negative": ["{b} support is terrible, still waiting after two weeks",
                 "Worst update ever, my {b} app keeps crashing. Awful.",
                 "So disappointed with {b}, the screen broke on day one"],
    "neutral": ["Picked up a {b} charger at the store this afternoon",
                "{b} announces a press event for next Tuesday",
                "Does anyone know when the {b} store opens?"],
}
_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "horse", "clock")


@cache
def sample_images(size: int = 224) -> tuple[bytes, ...]:
    """JPEG-encoded scikit-image sample photos (bundled with the package, no download)."""
    import numpy as np
    import skimage.data

    encoded = []
    for name in _IMAGES:
        pixels = np.asarray(getattr(skimage.data, name)())
        if pixels.dtype != np.uint8:
            pixels = (pixels.astype(float) / max(1, pixels.max()) * 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert("RGB").resize((size, size)).save(buffer, "JPEG", quality=85)
        encoded.append(buffer.getvalue())
    return tuple(encoded)


def sample_posts(count: int, seed: int = 7, start: datetime | None = None, image_share: float = 0.5) -> Iterator[Post]:
    """`count` posts spread over a few minutes, each about one brand, about half with an image."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    images = sample_images()
    for i in range(count):
        brand = rng.choice(BRANDS)
        mood = rng.choice(tuple(_TEXTS))
        yield Post(
            post_id=f"sample-{seed}-{i}",
            created_at=start + timedelta(seconds=rng.uniform(0, 300)),
            text=rng.choice(_TEXTS[mood]).format(b=brand.capitalize()),
            image=rng.choice(images) if rng.random() < image_share else None,
            brands=[brand],
            source="sample",
            lang="en",
        )
