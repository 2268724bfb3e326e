"""Re-score stored posts with a model into its own version of the trends (`monitor/store/rescored.py`).

Posts are read back in creation order, a page at a time, and each page is scored and written in one transaction,
so an interrupted run loses at most a page of work and the next run carries on where it stopped (posts already
re-scored are skipped). What the model sees is what was stored: the full text (only a 280-character excerpt for
posts stored before migration 0010), and the image's thumbnail, not the original image, nor the text OCR read from
it when the worker ran with WORKER_OCR. The report counts both, so a comparison can say how far it is like for like.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from core.logging import get_logger
from monitor.store.rescored import StoredPost, count_to_rescore, posts_to_rescore, rescore_row, write_rescores
from schemas import Post
from schemas.reasons import BadInput
from workers.inference.model import sentiment_results
from workers.inference.predictor import Predictor

log = get_logger(__name__)

MAX_IMAGE_PIXELS = 4096 * 4096
"""Thumbnails are small (WORKER_THUMBNAIL_PX); this only bounds a corrupt row."""


@dataclass
class RecomputeReport:
    model_version: str
    candidates: int = 0
    """Posts in the range the model had not scored when the run started."""
    rescored: int = 0
    """Re-scores written and counted (the rest were written meanwhile by another run, or deleted)."""
    without_content: int = 0
    """Posts with neither stored text nor thumbnail (an image-only post whose image was not kept)."""
    undecodable: int = 0
    """Posts whose stored thumbnail did not decode: scored on their text alone."""
    from_excerpt: int = 0
    """Posts read from a 280-character excerpt of a text that may have been longer."""
    from_thumbnail: int = 0
    """Posts whose image the model saw as its stored thumbnail."""
    seconds: float = 0.0

    @property
    def posts_per_second(self) -> float:
        return self.rescored / self.seconds if self.seconds else 0.0


def _post(stored: StoredPost, thumbnail: bytes | None) -> Post | None:
    if not stored.text.strip() and thumbnail is None:
        return None
    return Post(post_id=stored.post_id, created_at=stored.created_at, text=stored.text, image=thumbnail)


def _decoded(model: Predictor, stored: StoredPost, report: RecomputeReport):
    """(post, decoded input) or None when there is nothing to score."""
    post = _post(stored, stored.thumbnail)
    if post is None:
        report.without_content += 1
        return None
    try:
        decoded = model.decode(post, MAX_IMAGE_PIXELS)
    except BadInput:
        report.undecodable += 1
        post = _post(stored, None)
        if post is None:
            report.without_content += 1
            return None
        decoded = model.decode(post, MAX_IMAGE_PIXELS)
    else:
        report.from_thumbnail += stored.thumbnail is not None
    report.from_excerpt += stored.maybe_cut
    return post, decoded


async def recompute(engine: AsyncEngine, model: Predictor, since: datetime | None, until: datetime | None,
                    batch_size: int = 64, progress: Callable[[int], None] | None = None) -> RecomputeReport:
    """Re-score the posts created in [since, until) that `model` has not scored into its own buckets; `progress`
    is called with each page's size."""
    report = RecomputeReport(model.version)
    started = time.perf_counter()
    async with engine.connect() as conn:
        report.candidates = await count_to_rescore(conn, model.version, since, until)
    after: tuple[datetime, str] | None = None
    while True:
        async with engine.connect() as conn:
            page = await posts_to_rescore(conn, model.version, since, until, after, batch_size)
        if not page:
            break
        after = (page[-1].created_at, page[-1].post_id)
        usable = [(stored, *pair) for stored in page if (pair := _decoded(model, stored, report)) is not None]
        if usable:
            scored_at = time.perf_counter()
            probabilities = await asyncio.wrap_future(model.submit([decoded for _, _, decoded in usable]))
            results = sentiment_results([post for _, post, _ in usable], probabilities, model.labels, model.version,
                                        scored_at, languages=[stored.language for stored, _, _ in usable],
                                        supported_languages=model.config.languages)
            rows = [rescore_row(stored, result) for (stored, _, _), result in zip(usable, results, strict=True)]
            async with engine.begin() as conn:
                report.rescored += await write_rescores(conn, rows)
        if progress is not None:
            progress(len(page))
    report.seconds = time.perf_counter() - started
    log.info("recompute done", model=model.version, rescored=report.rescored, candidates=report.candidates,
             seconds=round(report.seconds, 1))
    return report
