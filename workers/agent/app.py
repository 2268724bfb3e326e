"""`monitor worker`: the Faust app that runs the inference agent, with the model here or in its own process."""

from __future__ import annotations

import sys

import faust

from core import metrics
from core.logging import get_logger
from core.settings import Settings
from core.streaming.app import create_app
from core.streaming.topics import create_topics
from workers.agent.agent import register_inference_agent
from workers.inference.child import ModelProcess
from workers.inference.predictor import Predictor
from workers.inference.runtime import load_worker_model

log = get_logger(__name__)


def load_model(settings: Settings) -> Predictor:
    """In a process of its own (MODEL_PROCESS, the default: no GIL shared with Kafka and decoding) or here."""
    if settings.model.own_process:
        return ModelProcess(settings.model, settings.runtime.log_level, settings.runtime.log_json)
    return load_worker_model(settings.model)


def build_worker_app(settings: Settings) -> faust.App:
    # The decode threads let go of the GIL for every image (libjpeg-turbo, PIL) and must win it back from a
    # busy event loop: a shorter switch interval than Python's gets them going sooner (docs/performance.md).
    sys.setswitchinterval(settings.worker.gil_switch_ms / 1000)
    app = create_app(settings.worker.group, settings)
    model = load_model(settings)
    log.info("model loaded", version=model.version, device=str(model.device), compiled=settings.model.compile,
             own_process=settings.model.own_process)
    metrics.MODEL_INFO.labels(model.version, str(model.device)).set(1)
    register_inference_agent(app, create_topics(app, settings), model, settings)
    return app
