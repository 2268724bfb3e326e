"""`monitor replay`'s producer keys each post by its id; exports read by the file connector name their bad rows."""

from datetime import UTC, datetime

from connectors.files import FileSource
from monitor.devstack.replay import as_payloads
from schemas import Post


def test_payloads_are_keyed_by_post_id():
    posts = [Post(post_id=f"p{i}", created_at=datetime(2026, 1, 1, tzinfo=UTC), text=f"post {i}") for i in range(3)]
    assert [key for key, _ in as_payloads(posts)] == [b"p0", b"p1", b"p2"]


async def test_a_jsonl_export_yields_posts_and_names_its_bad_row(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"post_id": "ok", "created_at": "2026-01-01T00:00:00Z", "text": "fine"}\n\n{"post_id": "x"}\n')
    records = [r async for r in FileSource(path, progress=False).records(None)]
    assert [r.value.post_id for r in records if r.value] == ["ok"]
    assert records[0].value.source == "file"
    [bad] = [r for r in records if r.malformed]
    assert bad.malformed.startswith("posts.jsonl row 2: ") and bad.raw == b'{"post_id": "x"}\n'
    assert [r.offset["row"] for r in records] == [1, 2]
