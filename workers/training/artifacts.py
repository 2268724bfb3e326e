"""What a training run leaves behind: JSON reports, the command that made them, the best trial's files."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any


def command_line() -> str:
    return " ".join(["monitor", *sys.argv[1:]]) if sys.argv else "monitor"


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def copy_best(source_dir: Path, out: Path) -> None:
    """Put a trial's best checkpoint and history where a plain run would have them."""
    for name in ("best.pt", "history.json"):
        if (source_dir / name).is_file():
            shutil.copy2(source_dir / name, out / name)
