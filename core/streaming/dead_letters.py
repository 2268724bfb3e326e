"""Dead letters: a message that cannot be used, with where it is and why, small enough for the broker."""

from __future__ import annotations

import faust

from schemas import DeadLetter
from schemas.reasons import ReasonCode

DEAD_LETTER_PAYLOAD_BYTES = 256 * 1024
"""A dead letter's payload is cut here (base64 in JSON: about 350 KiB a letter, well under the broker's 1 MB)."""


def dead_letter(event: faust.EventT, code: ReasonCode, reason: str) -> DeadLetter:
    """The letter for a message that cannot be used: where it is, why, and its payload (`capped`)."""
    message = event.message
    return capped(DeadLetter(code=code, reason=reason, topic=message.topic, partition=message.partition,
                             offset=message.offset, payload=message.value or b"", key=message.key))


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Where the original is and why it failed, as record headers: a DLQ consumer can route or deduplicate on
    them without parsing the value. A message redelivered after a crash is dead-lettered again with the same
    source coordinates, so (`source.topic`, `source.partition`, `source.offset`) identifies it."""
    headers = [("reason.code", letter.code.value.encode()), ("source.topic", letter.topic.encode())]
    if letter.partition is not None:
        headers.append(("source.partition", str(letter.partition).encode()))
    if letter.offset is not None:
        headers.append(("source.offset", str(letter.offset).encode()))
    return headers


def capped(letter: DeadLetter) -> DeadLetter:
    """The letter, with its payload cut to `DEAD_LETTER_PAYLOAD_BYTES` and the cut in its reason.

    The original stays at its topic, partition and offset, which the letter names. Uncut, a message near the
    size limit would make a letter larger than the broker takes (1 MB by default): the send would fail, the
    consumer would crash and the message would come back on every restart, a poison pill.
    """
    size = len(letter.payload)
    if size <= DEAD_LETTER_PAYLOAD_BYTES:
        return letter
    return letter.model_copy(update={
        "payload": letter.payload[:DEAD_LETTER_PAYLOAD_BYTES],
        "reason": f"{letter.reason} (payload cut to its first {DEAD_LETTER_PAYLOAD_BYTES} of {size} bytes; "
                  f"the whole message is at the topic, partition and offset given)",
    })
