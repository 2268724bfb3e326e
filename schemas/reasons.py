"""Why a message went to the dead-letter topic: a stable code for machines, a message for people."""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Every way a message can fail, one value each. Dead letters carry it in `code`; the worker's
    `monitor_worker_dead_letters` metric is labelled with it. Values never change meaning."""

    EMPTY = "empty"
    """A message without a value (a tombstone)."""
    MESSAGE_TOO_LARGE = "message_too_large"
    """More bytes than MAX_MESSAGE_BYTES: not read."""
    INVALID_POST = "invalid_post"
    """Not JSON, or JSON that is not a `Post`."""
    IMAGE_TOO_LARGE = "image_too_large"
    """An inline image with more pixels than MAX_IMAGE_PIXELS (a decompression bomb guard)."""
    UNDECODABLE_IMAGE = "undecodable_image"
    """An inline image no decoder can read."""
    LINKED_IMAGE = "linked_image"
    """A post with no text whose linked image could not be fetched or decoded."""
    INFERENCE_FAILED = "inference_failed"
    """The model raised on the batch (the model process itself dying is a crash instead, never a dead letter)."""
    INTERNAL_ERROR = "internal_error"
    """A bug preparing the post: it costs the post, not the worker."""
    INVALID_RESULT = "invalid_result"
    """A record on the sentiment topic that is not a `SentimentResult` (dead-lettered by the sink)."""
    INVALID_DELETION = "invalid_deletion"
    """A record on the deletions topic that is not a `PostDeletion` (dead-lettered by the sink)."""
    MALFORMED_SOURCE_EVENT = "malformed_source_event"
    """An event a source connector read but could not turn into a post: bad JSON, missing fields, a row of an
    import file that is not a post (dead-lettered by the connector, which goes on)."""


class BadInput(ValueError):
    """A message that can never be processed; it goes to the dead-letter topic with this code and message."""

    def __init__(self, code: ReasonCode, message: str) -> None:
        super().__init__(message)
        self.code = code
