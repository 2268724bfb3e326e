"""`monitor worker`: the Faust app that runs the inference agent, with the model here or in its own process."""

from __future__ import annotations

import signal
import sys

import faust

from core.logging import get_logger
from core.settings import Settings
from core.streaming.app import create_app
from core.streaming.topics import create_topics
from schemas import ModelRole
from workers.agent.agent import register_inference_agent
from workers.agent.model_switch import serving_at_start

log = get_logger(__name__)


def worker_group(settings: Settings) -> str:
    """A challenger consumes every post again in a group of its own, beside the champion's (WORKER_GROUP)."""
    if settings.model.role == ModelRole.CHALLENGER:
        return f"{settings.worker.group}-challenger"
    return settings.worker.group


def build_worker_app(settings: Settings) -> faust.App:
    # The decode threads let go of the GIL for every image (libjpeg-turbo, PIL) and must win it back from a
    # busy event loop: a shorter switch interval than Python's gets them going sooner (docs/performance.md).
    sys.setswitchinterval(settings.worker.gil_switch_ms / 1000)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the agent handles it (a reload): never a stop
    app = create_app(worker_group(settings), settings)
    switch = serving_at_start(settings)
    model = switch.serving.current
    log.info("model loaded", version=model.version, device=str(model.device), compiled=settings.model.compile,
             own_process=settings.model.own_process, role=settings.model.role, checkpoint=switch.checkpoint)
    register_inference_agent(app, create_topics(app, settings), model, settings, switch=switch)
    return app
