"""Per-post rows partitioned by week, so retention drops partitions instead of deleting rows.

`post_sentiment` becomes a table partitioned by range of `processed_at`, one partition per week (Monday 00:00 UTC)
plus a DEFAULT partition (`monitor/store/partitions.py`). Its primary key becomes (post_id, processed_at), as
PostgreSQL requires the partition key in a partitioned table's unique constraints: a post id stays unique because
every writer looks for it in every partition under the post's lock. `post_rescore` and `keyphrase_post` gain their
post's `processed_at` (`post_processed_at`) and are partitioned by it, so a post's rows in the three tables share a
week and are dropped together; their foreign keys to `post_sentiment` go (a partitioned table's rows can be
referenced only by its whole key). `post_thumbnail` folds into `post_sentiment.thumbnail`, one row per post.

The data is copied into the new tables (a rewrite of the three tables: plan a maintenance window on a large
store); the partitions it needs, and the coming weeks', are created first. Downgrade copies it back.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

from monitor.store.partitions import (
    COLUMNS_QUERY,
    PARTITIONED_TABLES,
    coming_weeks,
    create_default_statement,
    ensure_partitions,
    week_of,
)

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SEARCH_DOCUMENT = "to_tsvector('simple'::regconfig, coalesce(full_text, text_excerpt))"
POST_INDEXES = (
    "CREATE INDEX ix_post_sentiment_created_at ON post_sentiment (created_at)",
    "CREATE INDEX ix_post_sentiment_processed_at ON post_sentiment (processed_at)",
    "CREATE INDEX ix_post_sentiment_brands ON post_sentiment USING gin (brands)",
    "CREATE INDEX ix_post_sentiment_model_created ON post_sentiment (model_version, created_at)",
    f"CREATE INDEX ix_post_sentiment_search ON post_sentiment USING gin (({SEARCH_DOCUMENT}))",
)
DROP_FOREIGN_KEYS = """
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT conrelid::regclass AS referring, conname FROM pg_constraint
            WHERE contype = 'f' AND confrelid = 'post_sentiment'::regclass LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.referring, r.conname);
  END LOOP;
END $$
"""
COMMENTS = {
    "post_sentiment": "One row per scored post, partitioned by week of processed_at; retention drops whole weeks.",
    "post_rescore": "A stored post re-scored by another model (`monitor recompute`), partitioned like its post.",
    "keyphrase_post": "Posts the keyphrase pass counted, with the terms they added, partitioned like their post.",
}


def _columns(table: str) -> str:
    return ", ".join(op.get_bind().execute(COLUMNS_QUERY, {"table": table}).scalars())


def _set_aside(table: str, suffix: str) -> None:
    """Rename a table and its primary key out of the way of the one replacing it."""
    op.execute(f"ALTER TABLE {table} RENAME TO {table}_{suffix}")
    op.execute(f"ALTER INDEX {table}_pkey RENAME TO {table}_{suffix}_pkey")


def upgrade() -> None:
    op.execute(DROP_FOREIGN_KEYS)
    for table in PARTITIONED_TABLES:
        _set_aside(table.name, "0012")
    op.execute("CREATE TABLE post_sentiment (LIKE post_sentiment_0012 INCLUDING DEFAULTS INCLUDING COMMENTS, "
               "thumbnail bytea, PRIMARY KEY (post_id, processed_at)) PARTITION BY RANGE (processed_at)")
    op.execute("CREATE TABLE post_rescore (LIKE post_rescore_0012 INCLUDING DEFAULTS INCLUDING COMMENTS, "
               "post_processed_at timestamptz NOT NULL, PRIMARY KEY (post_id, model_version, post_processed_at)) "
               "PARTITION BY RANGE (post_processed_at)")
    op.execute("CREATE TABLE keyphrase_post (LIKE keyphrase_post_0012 INCLUDING DEFAULTS INCLUDING COMMENTS, "
               "post_processed_at timestamptz NOT NULL, PRIMARY KEY (post_id, post_processed_at)) "
               "PARTITION BY RANGE (post_processed_at)")
    for table in PARTITIONED_TABLES:
        op.execute(create_default_statement(table))
        op.execute(f"COMMENT ON TABLE {table.name} IS '{COMMENTS[table.name]}'")

    conn = op.get_bind()
    stored_weeks = conn.execute(text(
        "SELECT DISTINCT date_trunc('week', processed_at AT TIME ZONE 'UTC') FROM post_sentiment_0012")).scalars()
    weeks = {week_of(start.replace(tzinfo=UTC)) for start in stored_weeks}
    ensure_partitions(conn, weeks | set(coming_weeks(datetime.now(UTC))))
    op.execute("SET LOCAL lock_timeout = 0")  # ensure_partitions bounds its own waits; the copy below may wait

    op.execute("INSERT INTO post_sentiment SELECT p.*, t.jpeg FROM post_sentiment_0012 AS p "
               "LEFT JOIN post_thumbnail AS t USING (post_id)")
    op.execute("INSERT INTO post_rescore SELECT r.*, p.processed_at FROM post_rescore_0012 AS r "
               "JOIN post_sentiment AS p USING (post_id)")
    op.execute("INSERT INTO keyphrase_post SELECT k.*, p.processed_at FROM keyphrase_post_0012 AS k "
               "JOIN post_sentiment AS p USING (post_id)")
    op.execute("DROP TABLE post_thumbnail, post_sentiment_0012, post_rescore_0012, keyphrase_post_0012")
    for statement in POST_INDEXES:
        op.execute(statement)


def downgrade() -> None:
    for table in PARTITIONED_TABLES:
        _set_aside(table.name, "0013")
    for index in ("created_at", "processed_at", "brands", "model_created", "search"):
        op.execute(f"DROP INDEX ix_post_sentiment_{index}")

    op.execute("CREATE TABLE post_sentiment (LIKE post_sentiment_0013 INCLUDING DEFAULTS INCLUDING COMMENTS)")
    op.execute("ALTER TABLE post_sentiment DROP COLUMN thumbnail, ADD PRIMARY KEY (post_id)")
    columns = _columns("post_sentiment")
    op.execute(f"INSERT INTO post_sentiment ({columns}) SELECT DISTINCT ON (post_id) {columns} "
               "FROM post_sentiment_0013 ORDER BY post_id, processed_at")
    op.execute("CREATE TABLE post_thumbnail (post_id varchar(128) PRIMARY KEY "
               "REFERENCES post_sentiment (post_id) ON DELETE CASCADE, jpeg bytea NOT NULL)")
    op.execute("INSERT INTO post_thumbnail SELECT DISTINCT ON (post_id) post_id, thumbnail FROM post_sentiment_0013 "
               "WHERE thumbnail IS NOT NULL ORDER BY post_id, processed_at")

    for table, key in (("post_rescore", "post_id, model_version"), ("keyphrase_post", "post_id")):
        op.execute(f"CREATE TABLE {table} (LIKE {table}_0013 INCLUDING DEFAULTS INCLUDING COMMENTS)")
        op.execute(f"ALTER TABLE {table} DROP COLUMN post_processed_at, ADD PRIMARY KEY ({key}), "
                   "ADD FOREIGN KEY (post_id) REFERENCES post_sentiment (post_id) ON DELETE CASCADE")
        columns = _columns(table)
        op.execute(f"INSERT INTO {table} ({columns}) SELECT DISTINCT ON ({key}) {columns} FROM {table}_0013 "
                   f"WHERE post_id IN (SELECT post_id FROM post_sentiment) ORDER BY {key}, post_processed_at")
    op.execute("DROP TABLE post_sentiment_0013, post_rescore_0013, keyphrase_post_0013")
    for statement in POST_INDEXES:
        op.execute(statement)
