"""One stored post's content, as the model could read it again: its text and its thumbnail (explanations)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.db import EXCERPT_CHARS, NOT_DELETED, post_sentiment


@dataclass(frozen=True)
class PostContent:
    post_id: str
    created_at: datetime
    text: str
    """`full_text` when the post was longer than the excerpt, else the excerpt (the whole text)."""
    maybe_cut: bool
    """Only the excerpt is stored and it is full: stored before full texts were kept, the post may go on."""
    jpeg: bytes | None
    """The worker's small thumbnail of the post's image, not the image it scored; None without one."""
    label: str
    model_version: str
    """The model that scored the post live."""


async def post_content(engine: AsyncEngine, post_id: str) -> PostContent | None:
    """None for a post that was never stored or that its source deleted."""
    ps = post_sentiment.c
    maybe_cut = ps.full_text.is_(None) & (func.char_length(ps.text_excerpt) >= literal(EXCERPT_CHARS))
    query = (select(ps.post_id, ps.created_at, func.coalesce(ps.full_text, ps.text_excerpt).label("text"),
                    maybe_cut.label("maybe_cut"), ps.thumbnail.label("jpeg"), ps.label, ps.model_version)
             .where(ps.post_id == post_id, NOT_DELETED))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return PostContent(**row) if row is not None else None
