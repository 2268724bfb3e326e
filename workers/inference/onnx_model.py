"""RADM on onnxruntime: the CPU fast path, behind `SentimentModel`'s interface so the worker runs it unchanged.

Everything around the network stays `SentimentModel`'s (decode, tokenising, length buckets, results); only a
bucket's forward pass goes to onnxruntime: its posts with an image to the image graph, the rest to the text
graph (`workers.radm.graphs`). onnxruntime releases the GIL for the whole graph, fuses the attention and
LayerNorm subgraphs, and runs int8 MatMuls where the export was quantized.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.logging import get_logger
from workers.inference.model import SentimentModel, record_function
from workers.inference.onnx_export import GRAPHS, Precision, graph_path
from workers.radm import RADMConfig

log = get_logger(__name__)


def session_options(threads: int, spinning: bool = False):
    """One intra-op pool of `threads` (the worker's model threads), every graph optimisation, and (by default)
    no spinning: idle pool threads would otherwise busy-wait on the cores that decoding and Kafka need."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3  # warnings about unused initializers and fallbacks are expected, not news
    return options


class OnnxSentimentModel(SentimentModel):
    """`SentimentModel` whose network is a pair of onnxruntime sessions (CPU); no torch network is held."""

    def __init__(self, config: RADMConfig, folder: Path, precision: Precision, version: str, threads: int,
                 min_bucket_rows: int | None = None, spinning: bool = False) -> None:
        import onnxruntime as ort

        self.dtype = torch.float32
        self.model = None  # type: ignore[assignment]  # the sessions are the network
        self._config = config
        self.precision = precision
        self.folder = folder
        self.threads = threads
        self._setup(config, torch.device("cpu"), version, min_bucket_rows)
        options = session_options(threads, spinning)
        self.sessions = {graph: ort.InferenceSession(str(graph_path(folder, graph, precision)), options,
                                                     providers=["CPUExecutionProvider"])
                         for graph in GRAPHS}
        log.info("ONNX model ready", folder=str(folder), precision=precision, threads=threads, version=version)

    @property
    def config(self) -> RADMConfig:
        return self._config

    @property
    def runtime(self) -> str:
        return f"onnx-{self.precision}"

    def save(self, path: Path) -> None:
        raise NotImplementedError("an ONNX model is an export of a checkpoint: save the checkpoint instead")

    def bucket_probabilities(self, group: dict[str, torch.Tensor], images: int) -> torch.Tensor:
        ids = group["input_ids"].numpy()
        mask = group["attention_mask"].numpy()
        parts = []
        with record_function("radm.forward"):
            if images:
                parts.append(self.sessions["image"].run(None, {
                    "input_ids": np.ascontiguousarray(ids[:images]),
                    "attention_mask": np.ascontiguousarray(mask[:images]),
                    "pixel_values": np.ascontiguousarray(group["pixel_values"][:images].numpy()),
                })[0])
            if images < len(ids):
                parts.append(self.sessions["text"].run(None, {
                    "input_ids": np.ascontiguousarray(ids[images:]),
                    "attention_mask": np.ascontiguousarray(mask[images:]),
                })[0])
        return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts))
