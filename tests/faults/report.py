"""The figures of the faults suite: per scenario, posts sent, lost and double-counted (both must be 0)."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class ScenarioFigures:
    sent: int
    """Unique posts produced (the independent count every check compares against)."""
    lost: int
    double_counted: int
    details: dict = field(default_factory=dict)


@dataclass
class FaultReport:
    scenarios: dict[str, ScenarioFigures] = field(default_factory=dict)

    def record(self, scenario: str, sent: int, lost: int, double_counted: int, **details) -> None:
        self.scenarios[scenario] = ScenarioFigures(sent, lost, double_counted, details)

    def as_json(self) -> dict:
        return {
            "command": "FAULTS_REPORT=1 .venv/bin/pytest -m faults",
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "totals": {
                "sent": sum(s.sent for s in self.scenarios.values()),
                "lost": sum(s.lost for s in self.scenarios.values()),
                "double_counted": sum(s.double_counted for s in self.scenarios.values()),
            },
            "scenarios": {name: asdict(figures) for name, figures in sorted(self.scenarios.items())},
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
