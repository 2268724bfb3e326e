"""Local stand-ins for the public sources the connectors read: a Bluesky Jetstream, a Mastodon server, RSS/Atom feeds.

Each server is written from the protocol's public documentation (see docs/replay-servers.md), binds 127.0.0.1 on a
free port and is an async context manager exposing `.url`, so connector tests run offline and deterministically
against the same wire format, cursors, paging and failure modes as the real services.
"""

from monitor.devstack.sources.feeds import FeedItem, FeedRequest, FeedServer, atom_document, rss_document
from monitor.devstack.sources.jetstream import (
    JetstreamReplayServer,
    account_event,
    delete_event,
    identity_event,
    post_event,
    sample_events,
)
from monitor.devstack.sources.mastodon import MastodonReplayServer, sample_items, snowflake_id, status

__all__ = [
    "FeedItem",
    "FeedRequest",
    "FeedServer",
    "JetstreamReplayServer",
    "MastodonReplayServer",
    "account_event",
    "atom_document",
    "delete_event",
    "identity_event",
    "post_event",
    "rss_document",
    "sample_events",
    "sample_items",
    "snowflake_id",
    "status",
]
