"""Which runtime serves the worker's model (MODEL_RUNTIME): PyTorch, or its ONNX export on a CPU."""

from __future__ import annotations

import torch

from core.settings import ModelSettings
from workers.inference.model import SentimentModel, model_threads, resolve_checkpoint, resolve_device


def load_worker_model(settings: ModelSettings) -> SentimentModel:
    """The model as a worker serves it, in whichever process holds it: MODEL_CHECKPOINT on DEVICE (compiled
    with MODEL_COMPILE) or its ONNX export (MODEL_RUNTIME), and this process's CPU threads set for its size
    (`model_threads`)."""
    if use_onnx(settings):
        from workers.inference.onnx_cache import load_worker_onnx

        model = load_worker_onnx(settings, required=settings.runtime == "onnx")
        if model is not None:
            return model
    model = SentimentModel.load(settings.checkpoint, settings.device, compile=settings.compile)
    torch.set_num_threads(model_threads(model.model, settings.threads))
    return model


def use_onnx(settings: ModelSettings) -> bool:
    """MODEL_RUNTIME=onnx, or auto on a CPU with a real checkpoint (`untrained` is the tests' torch model); the
    GPU path is torch's (bf16, one pass per batch). Auto still falls back to torch where the export's parity
    does not hold (`load_worker_onnx`)."""
    if settings.runtime == "onnx":
        if resolve_device(settings.device).type != "cpu":
            raise ValueError(f"MODEL_RUNTIME=onnx runs on the CPU; DEVICE={settings.device} is not one")
        return True
    return (settings.runtime == "auto" and resolve_device(settings.device).type == "cpu"
            and resolve_checkpoint(settings.checkpoint) is not None)
