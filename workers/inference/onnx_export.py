"""RADM -> two ONNX graphs (posts with an image, posts without; see `workers.radm.graphs`), and their int8 form.

The TorchScript-tracing exporter is used: it keeps dynamic batch and token axes from `dynamic_axes` without
guarding on the example's sizes, and exports a model in seconds (the torch.export-based one took 30 s for the
tiny preset and froze its batch size). int8 (`quantize_graphs`) covers the MatMuls with constant weights, where
the transformer layers spend their time; the image encoder's convolutions stay float32 (their int8 form was not
measured).
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
"""Which MatMul/Gemm nodes `dynamic` int8 covers, by node name (docs/performance.md, "CPU fast path")."""
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


QUANTIZE_METHODS = ("blockwise", "dynamic")
"""`blockwise` (default): MatMulNBits, int8 weights in blocks of `BLOCK` along the input dimension, activations
quantized to int8 per block at run time (accuracy level 4); `dynamic`: `quantize_dynamic`, int8 weights per
output channel, uint8 activations with one scale per tensor (the nodes of `scope`)."""
BLOCK = 32


def quantize_graphs(folder: Path, graphs: Sequence[str] = GRAPHS, method: str = "blockwise",
                    scope: str = DEFAULT_SCOPE, block: int = BLOCK) -> dict[str, Path]:
    """Each `<graph>.fp32.onnx` -> `<graph>.int8.onnx`. On bootstrap and vader-tweets, `dynamic` agreed with fp32
    on 98.3% of labels (per-tensor activation scales lose the outliers of MiniLM's activations), `blockwise` on
    99.6% (docs/performance.md, "CPU fast path")."""
    paths = {}
    for graph in graphs:
        source, target = graph_path(folder, graph, "fp32"), graph_path(folder, graph, "int8")
        if method == "blockwise":
            _quantize_blockwise(source, target, block)
        elif method == "dynamic":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(source, target, op_types_to_quantize=list(QUANTIZED_OPS), weight_type=QuantType.QInt8,
                             per_channel=True, nodes_to_quantize=quantizable_nodes(source, scope))
        else:
            raise ValueError(f"unknown quantization method {method!r}; one of {QUANTIZE_METHODS}")
        paths[graph] = target
        log.info("ONNX graph quantized", graph=graph, method=method, path=str(target),
                 mib=round(target.stat().st_size / 2**20, 1))
    return paths


def _quantize_blockwise(source: Path, target: Path, block: int) -> None:
    """Every MatMul with a constant weight -> MatMulNBits (8 bits, symmetric, int8 compute)."""
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)  # a line per node
    quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), bits=8, block_size=block, is_symmetric=True,
                                     accuracy_level=4)
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), use_external_data_format=False)
