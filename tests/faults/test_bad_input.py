"""A worker process fed a mix of hostile messages and good posts: every bad one ends in `posts.dlq` with its
payload and a reason, every good one is scored and counted once, and the worker keeps running."""

from __future__ import annotations

import random

import pytest

from core.streaming.dead_letters import DEAD_LETTER_PAYLOAD_BYTES
from monitor.devstack.samples import sample_posts
from schemas import DeadLetter
from tests.faults.bad_inputs import jpeg, png_bomb, post_json
from tests.faults.helpers import assert_counted_once, drain, post_messages, produce, read_all, wait_stored

pytestmark = [pytest.mark.faults, pytest.mark.integration]

MAX_MESSAGE_BYTES = 300_000
MAX_IMAGE_PIXELS = 4_000_000
GOOD = 80


def bad_messages() -> list[tuple[bytes | None, str]]:
    """(payload, expected reason fragment); None is a tombstone (a message with no value)."""
    return [
        (None, "empty message"),
        (b"{this is not json", "invalid post"),
        (b"\xff\xfe\x00\x80 not utf-8 \xc3\x28", "invalid post"),
        (b"[1, 2, 3]", "invalid post"),
        (post_json(post_id="bad-type", text=123), "text: Input should be a valid string"),
        (post_json(post_id="bad-date", created_at="yesterday-ish"), "created_at"),
        (post_json(post_id="bad-extra", mood="happy"), "mood: Extra inputs are not permitted"),
        (post_json(post_id="bad-huge-text", text="x" * 5000), "text: String should have at most 4000"),
        (post_json(post_id="bad-tags", brands=[f"b{i}" for i in range(40)]), "brands"),
        (post_json(post_id="bad-empty", text="   "), "neither text nor image"),
        (post_json(post_id="bad-oversize", text="big", image=b"\x00" * MAX_MESSAGE_BYTES), "exceeds limit"),
        (post_json(post_id="bad-zero-image", text="", image=b""), "undecodable image"),
        (post_json(post_id="bad-truncated", image=jpeg()[:200]), "undecodable image"),
        (post_json(post_id="bad-not-image", image=b"%PDF-1.4 definitely not a picture"), "undecodable image"),
        (post_json(post_id="bad-bomb", image=png_bomb(4000, 4000)), "exceeds limit of 4000000"),
        (post_json(post_id="bad-base64", image="not base64 !!!"), "invalid post"),
    ]


async def test_bad_messages_go_to_dlq_good_posts_are_scored(fault_settings, fault_engine, pipeline, fault_report):
    for child in pipeline.children.values():
        child.env.update(MAX_MESSAGE_BYTES=str(MAX_MESSAGE_BYTES), MAX_IMAGE_PIXELS=str(MAX_IMAGE_PIXELS))
    posts = list(sample_posts(GOOD, seed=209))
    bad = bad_messages()
    mixed: list[tuple[bytes | None, bytes | None]] = [(b"bad", payload) for payload, _ in bad] + post_messages(posts)
    random.Random(209).shuffle(mixed)

    pipeline.start()
    await produce(fault_settings, mixed)
    await wait_stored(fault_engine, {p.post_id for p in posts}, pipeline)

    dead = await read_all(fault_settings, fault_settings.kafka.dlq_topic, lambda messages: len(messages) >= len(bad))
    letters = [DeadLetter.model_validate_json(m.value) for m in dead]
    assert len(letters) == len(bad), "only the bad messages, each once"

    def letter_for(payload: bytes) -> DeadLetter:
        """Its letter: the whole payload, or (over DEAD_LETTER_PAYLOAD_BYTES) its head, cut and said so."""
        return next(letter for letter in letters if letter.payload == payload
                    or (payload.startswith(letter.payload) and "payload cut" in letter.reason))

    for payload, reason in bad:
        letter = letter_for(payload or b"")
        assert reason in letter.reason, f"{payload[:40] if payload else payload!r}: {letter.reason[:200]}"
    oversize = next(payload for payload, _ in bad if payload and b'"bad-oversize"' in payload)
    assert len(letter_for(oversize).payload) == DEAD_LETTER_PAYLOAD_BYTES  # cut: its letter would be too large
    pipeline.check_alive()  # the worker kept running through all of it

    await drain(fault_settings, fault_engine, pipeline)
    await assert_counted_once(fault_engine, posts, fault_report, "bad input mixed with good posts",
                              bad_messages=len(bad), dead_lettered=len(letters))
