"""Turning what sources send into a post's fields: HTML to plain text, source ids into post ids."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from bs4 import BeautifulSoup

from schemas.messages import MAX_TEXT_CHARS

MAX_POST_ID_CHARS = 128


def html_to_text(html: str) -> str:
    """Visible text of a post's HTML (Mastodon content, feed summaries): paragraphs and line breaks become new
    lines, links keep their text, entities are decoded. Cut to the longest text a post may carry."""
    if "<" not in html and "&" not in html:
        return html[:MAX_TEXT_CHARS]
    soup = BeautifulSoup(html, "html.parser")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(["p", "div", "li", "blockquote"]):
        block.insert_after("\n")
    text = "\n".join(line.strip() for line in soup.get_text().splitlines())
    return "\n".join(part for part in text.split("\n") if part)[:MAX_TEXT_CHARS]


def post_id(source_id: str) -> str:
    """The source's own id (an at-URI, a status URL, a feed guid) when it fits a post id, else a digest of it,
    so the same source item always maps to the same post id (replays and overlaps dedupe downstream)."""
    if len(source_id) <= MAX_POST_ID_CHARS:
        return source_id
    return "sha256:" + hashlib.sha256(source_id.encode()).hexdigest()


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 / RFC 3339 time from a source, or None when missing or unreadable (the caller picks a fallback)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
