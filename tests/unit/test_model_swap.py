"""Hot swap without a broker: the share hash, the control record, candidate checks and the swap between batches."""

import asyncio
import os
import signal
from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from core.settings import Settings
from core.streaming.model_control import in_share, parse_record
from schemas import ModelAssignment, ModelRole, Post, SentimentResult
from tests.unit.test_agent import make_harness, wait_for
from workers.agent.model_switch import ModelSwitch
from workers.inference.model import SentimentModel
from workers.inference.swap import ModelRefused, fit_images, load_candidate
from workers.radm import RADM, RADMConfig

UNTRAINED_ID = "radm-tiny-1-untrained"


def settings(**overrides) -> Settings:
    return Settings(kafka_bootstrap="localhost:1", model_process=False, model_runtime="torch", **overrides)


@pytest.fixture(scope="module")
def second_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoints") / "radm-test-2.pt"
    RADM(RADMConfig.tiny(version="radm-test-2")).save(path)
    return path


def test_share_hash_is_deterministic_and_close_to_the_share():
    ids = [f"post-{i}" for i in range(10_000)]
    for share in (0.1, 0.5):
        picked = [post_id for post_id in ids if in_share(post_id, share)]
        assert abs(len(picked) / len(ids) - share) < 0.02
        assert picked == [post_id for post_id in ids if in_share(post_id, share)]
    small = {post_id for post_id in ids if in_share(post_id, 0.1)}
    assert small <= {post_id for post_id in ids if in_share(post_id, 0.5)}  # a larger share keeps the smaller's posts
    assert all(in_share(post_id, 1.0) for post_id in ids[:100])
    assert not any(in_share(post_id, 0.0) for post_id in ids[:100])


def test_assignment_round_trips_and_rejects_what_it_does_not_know():
    record = ModelAssignment(checkpoint="/models/radm-2.pt", model_id="radm-2@0123456789ab", share=0.25)
    assert ModelAssignment.model_validate_json(record.model_dump_json()) == record
    assert ModelAssignment.model_validate_json('{"checkpoint": "bootstrap"}').model_id is None
    for bad in ('{"checkpoint": ""}', '{"checkpoint": "x", "share": 1.5}', '{"checkpoint": "x", "role": "champion"}',
                '{"model_id": "x"}'):
        with pytest.raises(ValidationError):
            ModelAssignment.model_validate_json(bad)


def test_control_records_that_are_not_assignments_are_ignored():
    assert parse_record(b"challenger", b'{"checkpoint": "untrained", "share": 0.5}') == (
        ModelRole.CHALLENGER, ModelAssignment.model_validate_json(b'{"checkpoint": "untrained", "share": 0.5}'))
    assert parse_record(b"champion", None) is None  # a tombstone
    assert parse_record(b"champion", b"{not json") is None
    assert parse_record(b"referee", b'{"checkpoint": "untrained"}') is None
    assert parse_record(None, b'{"checkpoint": "untrained"}') is None


def test_a_candidate_must_load_have_the_expected_id_and_the_sentiment_labels(tmp_path, second_checkpoint):
    model_settings = settings().model
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelRefused, match="did not load"):
        load_candidate(model_settings, str(corrupt), None, 1_000_000)
    with pytest.raises(ModelRefused, match="did not load"):
        load_candidate(model_settings, str(tmp_path / "missing.pt"), None, 1_000_000)
    with pytest.raises(ModelRefused, match="not the expected"):
        load_candidate(model_settings, str(second_checkpoint), "radm-test-2@000000000000", 1_000_000)
    emotions = tmp_path / "emotions.pt"
    RADM(RADMConfig.tiny(labels=("joy", "anger", "fear"))).save(emotions)
    with pytest.raises(ModelRefused, match="sentiment labels"):
        load_candidate(model_settings, str(emotions), None, 1_000_000)
    model = load_candidate(model_settings, str(second_checkpoint), None, 1_000_000)
    assert model.version.startswith("radm-test-2@")


async def test_a_refused_checkpoint_leaves_the_old_model_serving(tmp_path, second_checkpoint):
    switch = ModelSwitch(SentimentModel.load("untrained", "cpu"), settings(model_checkpoint="untrained"))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00" * 64)
    assert await switch.swap_to(str(corrupt), None, "test") == "refused"
    assert await switch.apply(ModelAssignment(checkpoint=str(second_checkpoint), model_id="radm-test-2@bad")) \
        == "refused"
    assert switch.serving.current.version == UNTRAINED_ID and switch.checkpoint == "untrained"
    model, probabilities = switch.serving.submit([("still serving", None)])
    assert model.version == UNTRAINED_ID and len(probabilities.result()[0]) == 3
    assert await switch.apply(ModelAssignment(checkpoint=str(second_checkpoint))) == "swapped"
    assert switch.serving.current.version.startswith("radm-test-2@")
    await switch.stop()


async def test_sighup_swaps_only_when_the_file_at_the_checkpoint_changed(tmp_path, second_checkpoint):
    path = tmp_path / "served.pt"
    path.write_bytes(second_checkpoint.read_bytes())
    first = SentimentModel.load(path, "cpu")
    switch = ModelSwitch(first, settings(model_checkpoint=str(path)))
    await switch.start()
    try:
        assert await switch.reload("test") == "unchanged"
        RADM(RADMConfig.tiny(version="radm-test-3")).save(path)  # a volume update replaced the file
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: switch.serving.current.version.startswith("radm-test-3@"))
    finally:
        await switch.stop()


def test_a_batch_decoded_for_another_image_size_is_fitted_to_the_new_model():
    decoded = [("text", None), ("image", np.zeros((32, 32, 3), np.uint8))]
    assert fit_images(decoded, 32) is decoded
    [(_, none), (_, image)] = fit_images(decoded, 64)
    assert none is None and image.shape == (64, 64, 3) and image.dtype == np.uint8


def posts(n: int, prefix: str = "p") -> list[Post]:
    return [Post(post_id=f"{prefix}{i}", created_at=datetime.now(UTC), text=f"post number {i}") for i in range(n)]


async def test_batches_submitted_before_a_swap_carry_the_old_id_and_later_ones_the_new(second_checkpoint):
    agent, sent = make_harness(model_process=False, model_runtime="torch")
    switch = agent.fun.__self__.switch
    stream = posts(200)
    async with agent.test_context() as context:
        for post in stream[:100]:
            await context.put(post.model_dump_json().encode())
        await wait_for(lambda: len(sent["sentiment"]) >= 20)
        assert await switch.swap_to(str(second_checkpoint), None, "test") == "swapped"
        for post in stream[100:]:
            await context.put(post.model_dump_json().encode())
        await wait_for(lambda: len(sent["sentiment"]) == 200)
    versions = [SentimentResult.model_validate_json(raw).model_version for raw in sent["sentiment"]]
    ids = [SentimentResult.model_validate_json(raw).post_id for raw in sent["sentiment"]]
    assert sorted(ids) == sorted(post.post_id for post in stream)  # each post once
    old = versions.count(UNTRAINED_ID)
    assert 20 <= old < 200 and versions == [UNTRAINED_ID] * old + [switch.serving.current.version] * (200 - old)
    assert switch.serving.current.version.startswith("radm-test-2@")


async def test_a_challenger_scores_its_share_into_the_shadow_topic_and_writes_no_dead_letters():
    agent, sent = make_harness(model_role="challenger", model_shadow_share=0.3, model_process=False,
                               model_runtime="torch")
    stream = posts(300, "c")
    wanted = {post.post_id for post in stream if in_share(post.post_id, 0.3)}
    async with agent.test_context() as context:
        await context.put(b"{broken json")
        for post in stream:
            await context.put(post.model_dump_json().encode())
        await wait_for(lambda: len(sent["shadow"]) == len(wanted))
        await asyncio.sleep(0.2)
    assert sent["sentiment"] == [] and sent["dlq"] == []
    assert {SentimentResult.model_validate_json(raw).post_id for raw in sent["shadow"]} == wanted
    assert 60 < len(wanted) < 120
