"""Per-post advisory locks: every writer of a post's rows (the sink's results and deletions, recompute) takes them
first, so two transactions touching one post serialise and the second sees what the first committed."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Integer, Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

POST_LOCK_CLASS = 0x5E_DE
"""The first key of the per-post advisory locks; the two-key space never meets the single-key locks of retention,
migrations and alerts."""

LOCK_POSTS_STATEMENT = text(
    "SELECT count(pg_advisory_xact_lock(:lock_class, h)) FROM "
    "(SELECT DISTINCT hashtext(id) AS h FROM unnest(CAST(:post_ids AS text[])) AS id ORDER BY h) AS keys"
).bindparams(bindparam("lock_class", POST_LOCK_CLASS, type_=Integer), bindparam("post_ids", type_=ARRAY(Text)))
"""Locks taken in hash order (not post id order: two ids may share a hash), so two batches never deadlock."""


async def lock_posts(conn: AsyncConnection, post_ids: Iterable[str]) -> None:
    """Serialise this transaction with any other writing a result or a deletion of the same posts, until commit.

    It must run as a statement of its own, before the write: in READ COMMITTED each statement sees what was
    committed before it started, so only a later statement sees what the transaction waited for.
    """
    await conn.execute(LOCK_POSTS_STATEMENT, {"post_ids": sorted(set(post_ids))})
