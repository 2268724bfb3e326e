"""PostgreSQL tables: per-post results (the dedup key) and per-brand trend buckets."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = MetaData()

post_sentiment = Table(
    "post_sentiment",
    metadata,
    Column("post_id", String(128), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("label", String(16), nullable=False),
    Column("p_negative", Float, nullable=False),
    Column("p_neutral", Float, nullable=False),
    Column("p_positive", Float, nullable=False),
    Column("polarity", Float, nullable=False),
    Column("brands", ARRAY(Text), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("text_excerpt", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

trend_bucket = Table(
    "trend_bucket",
    metadata,
    Column("brand", String(64), nullable=False),
    Column("granularity", String(8), nullable=False),
    Column("bucket_start", DateTime(timezone=True), nullable=False),
    Column("negative", Integer, nullable=False, default=0),
    Column("neutral", Integer, nullable=False, default=0),
    Column("positive", Integer, nullable=False, default=0),
    Column("polarity_sum", Float, nullable=False, default=0.0),
    PrimaryKeyConstraint("brand", "granularity", "bucket_start"),
)


def create_engine(database_url: str) -> AsyncEngine:
    return create_async_engine(database_url, pool_pre_ping=True, pool_size=5)


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
