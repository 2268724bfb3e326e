"""RADM -> two ONNX graphs (posts with an image, posts without; see `workers.radm.graphs`), and their int8 form.

The TorchScript-tracing exporter is used: it keeps dynamic batch and token axes from `dynamic_axes` without
guarding on the example's sizes, and exports a model in seconds (the torch.export-based one took 30 s for the
tiny preset and froze its batch size). int8 is onnxruntime's dynamic quantization: weights stored as int8,
activations quantized per batch, so no calibration set is needed. Only MatMul/Gemm are quantized: that is
where the transformer layers spend their time, while the image encoder's convolutions stay float32 (dynamic
quantization of Conv measured slower on CPU than float32, docs/performance.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch

from core.logging import get_logger
from workers.radm import RADM
from workers.radm.graphs import ImageTextGraph, TextGraph

log = get_logger(__name__)

OPSET = 17
Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")
GRAPHS = ("image", "text")
"""`image`: posts with an image (input_ids, attention_mask, pixel_values); `text`: posts without one."""
QUANTIZED_OPS = ("MatMul", "Gemm")


def _text_encoder(name: str) -> bool:
    return "/text_encoder/" in name


def _text_ffn_output(name: str) -> bool:
    """The text encoder's FFN down-projections (BERT `output.dense`), which read GELU outputs with the widest
    activation range of the network: per-tensor uint8 activations lose the most there."""
    return _text_encoder(name) and "/output/dense/" in name and "/attention/" not in name


QUANTIZE_SCOPES: dict[str, Callable[[str], bool]] = {
    "all": lambda name: True,
    "text-encoder": _text_encoder,
    "skip-ffn-output": lambda name: not _text_ffn_output(name),
}
"""Which MatMul/Gemm nodes int8 covers, by node name (docs/performance.md, "CPU fast path", for the measurements)."""
DEFAULT_SCOPE = "skip-ffn-output"


def graph_path(folder: Path, graph: str, precision: Precision) -> Path:
    return folder / f"{graph}.{precision}.onnx"


def _example(model: RADM, batch: int = 2, tokens: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A traced example whose second row is padded, so masking is in the graph as it is at run time."""
    input_ids = torch.full((batch, tokens), 1000, dtype=torch.long)
    attention_mask = torch.ones((batch, tokens), dtype=torch.long)
    attention_mask[-1, tokens // 2:] = 0
    size = model.config.image_size
    return input_ids, attention_mask, torch.zeros((batch, 3, size, size))


def export_graphs(model: RADM, folder: Path) -> dict[str, Path]:
    """Write image.fp32.onnx and text.fp32.onnx (float32, eval mode, dynamic batch and token axes)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = model.float().eval()
    input_ids, attention_mask, pixel_values = _example(model)
    tokens = {0: "batch", 1: "tokens"}
    cases = {
        "image": (ImageTextGraph(model), (input_ids, attention_mask, pixel_values),
                  ["input_ids", "attention_mask", "pixel_values"]),
        "text": (TextGraph(model), (input_ids, attention_mask), ["input_ids", "attention_mask"]),
    }
    paths = {}
    for graph, (module, args, names) in cases.items():
        axes = {"input_ids": tokens, "attention_mask": tokens, "pixel_values": {0: "batch"},
                "probabilities": {0: "batch"}}
        path = graph_path(folder, graph, "fp32")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python ints taken from shapes: checked by parity
            torch.onnx.export(module.eval(), args, str(path), input_names=names, output_names=["probabilities"],
                              dynamic_axes={name: axes[name] for name in [*names, "probabilities"]},
                              opset_version=OPSET, dynamo=False, do_constant_folding=True)
        paths[graph] = path
        log.info("ONNX graph exported", graph=graph, path=str(path), mib=round(path.stat().st_size / 2**20, 1))
    return paths


def quantizable_nodes(path: Path, scope: str) -> list[str]:
    """The MatMul/Gemm node names int8 covers under `scope`."""
    import onnx

    if scope not in QUANTIZE_SCOPES:
        raise ValueError(f"unknown quantization scope {scope!r}; one of {sorted(QUANTIZE_SCOPES)}")
    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if node.op_type in QUANTIZED_OPS and QUANTIZE_SCOPES[scope](node.name)]


def quantize_graphs(folder: Path, graphs: Sequence[str] = GRAPHS, scope: str = DEFAULT_SCOPE,
                    per_channel: bool = True) -> dict[str, Path]:
    """Each `<graph>.fp32.onnx` -> `<graph>.int8.onnx`: dynamic quantization of MatMul/Gemm weights to int8, one
    scale per output channel (per tensor lost a label in ten on the probe posts)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    paths = {}
    for graph in graphs:
        source, target = graph_path(folder, graph, "fp32"), graph_path(folder, graph, "int8")
        quantize_dynamic(source, target, op_types_to_quantize=list(QUANTIZED_OPS), weight_type=QuantType.QInt8,
                         per_channel=per_channel, nodes_to_quantize=quantizable_nodes(source, scope))
        paths[graph] = target
        log.info("ONNX graph quantized", graph=graph, scope=scope, per_channel=per_channel, path=str(target),
                 mib=round(target.stat().st_size / 2**20, 1))
    return paths
