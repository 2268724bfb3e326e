"""Triage: a batch's raw messages -> posts ready for the model (parsed, decoded, thumbnailed, language named,
linked images fetched) and dead letters with the reason for the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import faust
import numpy as np

from core import metrics
from core.logging import get_logger
from core.settings import Settings
from core.streaming.dead_letters import dead_letter
from schemas import DeadLetter, Post
from schemas.reasons import BadInput, ReasonCode
from workers.agent.image_fetch import FetchFailed, ImageFetcher
from workers.agent.posts import parse_post
from workers.enrich.language import LanguageDetector
from workers.enrich.ocr import ImageTextReader, add_image_text
from workers.inference.model import Decoded
from workers.inference.predictor import Predictor
from workers.media.images import thumbnail_jpeg, upright_aspect

if TYPE_CHECKING:
    from workers.agent.model_switch import ServingModel

log = get_logger(__name__)

T = TypeVar("T")


Ready = tuple[Post, Decoded, bytes | None, str | None]
"""A post ready for the model: the post, its text and pixels, its image's thumbnail (if any), its language."""


class Skipped:
    """A post outside a challenger's share: acked with its batch, neither scored nor dead-lettered."""


SKIPPED = Skipped()


@dataclass
class Prepared:
    """A batch after triage: the events that carry a usable post (aligned with posts, decoded and thumbnails),
    the dead letters of the others, and, until their images are fetched (`Triage.add_linked`), the events whose
    post links to its image."""

    usable: list[faust.EventT] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    decoded: list[Decoded] = field(default_factory=list)
    thumbnails: list[bytes | None] = field(default_factory=list)
    languages: list[str | None] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0
    """Posts outside a challenger's share (`Triage.select`)."""
    linked: list[tuple[faust.EventT, Post]] = field(default_factory=list)
    fetching: asyncio.Future[list[bytes | FetchFailed]] | None = None
    """The linked images on their way (`Triage.start_fetching`)."""

    def add(self, event: faust.EventT, outcome: Ready | BadInput) -> None:
        if isinstance(outcome, BadInput):
            self.dead.append(dead_letter(event, outcome.code, str(outcome)))
            return
        self.usable.append(event)
        self.posts.append(outcome[0])
        self.decoded.append(outcome[1])
        self.thumbnails.append(outcome[2])
        self.languages.append(outcome[3])


def explained(work: Callable[..., T], *args: Any) -> T | BadInput:
    """`work(*args)`, or why it failed: a bad input, or an unexpected error as one, logged. A decoder or validator
    bug must cost one post (in the DLQ), not the worker."""
    try:
        return work(*args)
    except BadInput as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - see above
        log.exception("unexpected error preparing a post")
        return BadInput(ReasonCode.INTERNAL_ERROR, f"internal error preparing the post: {exc!r}")


class Triage:
    """Parse and decode a batch on a thread pool, with a thumbnail of each image; fetch the images posts link
    to; split usable posts from dead letters.

    The pool lives as long as the process: its idle threads cost nothing and exit with the interpreter."""

    def __init__(self, model: Predictor | ServingModel, settings: Settings,
                 select: Callable[[Post], bool] | None = None) -> None:
        """`select`: which parsed posts to go on with (a challenger's share); the others are skipped before any
        image is decoded or fetched. None (a champion): every post."""
        self.model, self.settings, self.select = model, settings, select
        self.threads = settings.worker.decode_threads
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="decode")
        self.fetcher = ImageFetcher(settings.worker.image_timeout_s, settings.worker.max_message_bytes,
                                    settings.worker.image_connections, settings.worker.image_private_hosts,
                                    ) if settings.worker.fetch_images else None
        self.reader = ImageTextReader() if settings.worker.ocr else None
        self.languages = LanguageDetector()

    def one(self, raw: bytes | None) -> Ready | Post | BadInput | Skipped:
        """Ready, a post whose linked image must be fetched first, skipped, or why the message cannot be used."""

        def triaged() -> Ready | Post | Skipped:
            post = parse_post(raw, self.settings.worker.max_message_bytes)
            if self.select is not None and not self.select(post):
                return SKIPPED
            if post.image is None and post.image_url is not None and self.fetcher is not None:
                return post
            return self.ready(post)

        return explained(triaged)

    def ready(self, post: Post, image: bytes | None = None) -> Ready:
        """The post decoded with its inline image, or with `image` fetched for it; raises BadInput."""
        with_image = post if image is None else post.model_copy(update={"image": image})
        decoded = add_image_text(self.model.decode(with_image, self.settings.worker.max_image_pixels), with_image.image,
                                 self.reader, self.settings.worker.max_image_pixels)
        return post, decoded, self.thumbnail(with_image, decoded[1]), self.language(post, decoded[0])

    def language(self, post: Post, text: str) -> str | None:
        """The producer's `lang` (e.g. a Mastodon status's language) when it gives one, else detected."""
        declared = (post.lang or "").split("-")[0].strip().lower()
        return declared if len(declared) == 2 and declared.isalpha() else self.languages.detect(text)

    def thumbnail(self, post: Post, pixels: np.ndarray | None) -> bytes | None:
        """The dashboard's JPEG of the image the model sees; a post is scored without one rather than lost."""
        if pixels is None or post.image is None or not self.settings.worker.thumbnail_px:
            return None
        try:
            return thumbnail_jpeg(pixels, upright_aspect(post.image), self.settings.worker.thumbnail_px)
        except Exception:  # noqa: BLE001 - the image decoded: whatever fails here is not worth the post
            log.exception("no thumbnail for a post", post_id=post.post_id)
            return None

    def many(self, raws: Sequence[bytes | None]) -> list[Ready | Post | BadInput | Skipped]:
        return [self.one(raw) for raw in raws]

    def __call__(self, events: Sequence[faust.EventT]) -> Prepared:
        """One slice of the batch per thread: a task per post would cost a future, a queue hand-off and a
        thread wake-up each, all under the GIL."""
        raws = [event.message.value for event in events]
        size = -(-len(raws) // self.threads)
        outcomes = [o for part in self.pool.map(self.many, [raws[i:i + size] for i in range(0, len(raws), size)])
                    for o in part]
        prepared = Prepared()
        for event, outcome in zip(events, outcomes, strict=True):
            if isinstance(outcome, Post):
                prepared.linked.append((event, outcome))
            elif outcome is SKIPPED:
                prepared.skipped += 1
            else:
                prepared.add(event, outcome)
        return prepared

    def start_fetching(self, prepared: Prepared) -> None:
        """Start fetching the batch's linked images, all at once, on this event loop: they travel while the
        batch waits for the fetch stage, and while the batches before it are fetched."""
        if prepared.linked and self.fetcher is not None:
            prepared.fetching = asyncio.ensure_future(
                self.fetcher.fetch_all([str(post.image_url) for _, post in prepared.linked]))

    async def add_linked(self, prepared: Prepared) -> None:
        """Await the batch's linked images, then decode them on a thread. A post whose image cannot be fetched
        or decoded is scored on its text: a remote image, which its producer may not control, never costs a
        post its text. Without text there is nothing to score: it goes to the DLQ."""
        if prepared.fetching is None:
            return
        linked, prepared.linked = prepared.linked, []
        fetched = await prepared.fetching
        outcomes = await asyncio.to_thread(
            lambda: [explained(self.ready, post, got) if isinstance(got, bytes)
                     else BadInput(ReasonCode.LINKED_IMAGE, str(got))
                     for (_, post), got in zip(linked, fetched, strict=True)])
        for (event, post), outcome in zip(linked, outcomes, strict=True):
            metrics.LINKED_IMAGES.labels("failed" if isinstance(outcome, BadInput) else "used").inc()
            if isinstance(outcome, BadInput):
                log.info("linked image not used", post_id=post.post_id, url=str(post.image_url).split("?")[0],
                         reason=str(outcome))  # no query string: signed URLs carry their credentials there
                outcome = (explained(self.ready, post) if post.text.strip()
                           else BadInput(ReasonCode.LINKED_IMAGE, f"linked image unusable: {outcome}"))
            prepared.add(event, outcome)
