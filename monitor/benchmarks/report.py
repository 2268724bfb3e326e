"""What every benchmark report carries: the host, the device in words, and where the JSON goes."""

from __future__ import annotations

import json
import os
import platform
import socket
from pathlib import Path

import torch

from monitor.logging import get_logger

log = get_logger(__name__)


def host_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        models = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")]
        cpu = models[0] if models else cpu
    except OSError:
        pass
    return {"hostname": socket.gethostname(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "load_avg_1m_before": round(os.getloadavg()[0], 2), "platform": platform.platform(),
            "python": platform.python_version()}


def device_name(device: torch.device | None = None) -> str:
    """'NVIDIA H100 80GB HBM3 (cuda:0)' or 'CPU only: <model> x<cores> on <host>'."""
    if device is not None and device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    host = host_info()
    return f"CPU only: {host['cpu']} x{host['cpu_count']} on {host['hostname']}"


def write_report(report: dict, out: Path | None) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    log.info("benchmark report written", path=str(out))
