"""Where a connector's resume offset lives between runs: one small JSON file, replaced atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from connectors.source import Offset
from core.logging import get_logger

log = get_logger(__name__)


class CursorStore:
    """The offset of everything the broker acknowledged, for one connector. Written to a temporary file, flushed to
    disk and renamed over the old one, so a crash (kill -9, power loss) leaves the old cursor or the new one,
    never half of one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise RuntimeError(f"cursor file {self.path} is not JSON ({exc}): fix or delete it to start over") from None

    def save(self, offset: Offset) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                json.dump(offset, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
