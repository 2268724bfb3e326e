# Issue 8's 50% MFU target: how much of the GPU's peak do these shapes get at all? One process, bf16, batch 256:
#   python bench/exploratory/gpu_mfu_ceiling.py OUT.json SECONDS_BUDGET
# - gemm: one matmul of ViT-B/16's MLP shape (256 x 197 tokens, 768 -> 3072), the model's largest GEMM: the most a
#   layer of this width gets;
# - vit: the image encoder alone (timm vit_base_patch16_224 as full-shapes builds it), with PyTorch's default
#   attention backends, with cuDNN attention off (flash attention instead), then torch.compile'd;
# - radm: SentimentModel.probabilities on a pre-tokenised batch (the forward pass and its copies, no tokenising),
#   half and all posts with a photo, default backends and cuDNN attention off.
# TFLOP/s from FlopCounterMode on the same call; MFU against the device's datasheet peak (benchmarks.model).
import json
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.model import bench_posts, load_model, peak_flops

out, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
batch, seconds = 256 if device.type == "cuda" else 4, 2.0
peak = peak_flops(device, torch.bfloat16)
results = []


def flops_of(call) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        call()
    return counter.get_total_flops()


def measure(label: str, call, **extra) -> None:
    """Calls per second after a warm-up call, for at least `seconds`; TFLOP/s and MFU of one call's FLOPs."""
    started = time.perf_counter()
    call()
    if device.type == "cuda":
        torch.cuda.synchronize()
    warm_s = time.perf_counter() - started
    flops = flops_of(call)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        calls += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
    per_call = (time.perf_counter() - started) / calls
    row = {"variant": label, "ms_per_call": round(per_call * 1000, 2), "gflops_per_call": round(flops / 1e9, 1),
           "tflops": round(flops / per_call / 1e12, 1), "warm_up_s": round(warm_s, 1), **extra}
    if peak:
        row["mfu"] = round(flops / per_call / peak, 4)
    results.append(row)
    print(json.dumps(row), flush=True)
    with open(out, "w") as file:
        json.dump({"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "batch": batch,
                   "torch": torch.__version__, "runs": results}, file, indent=1)


with torch.inference_mode():
    tokens = batch * 197
    activations = torch.randn(tokens, 768, device=device, dtype=torch.bfloat16)
    weight = torch.randn(3072, 768, device=device, dtype=torch.bfloat16)
    measure("gemm 50432x768 @ 768x3072", lambda: torch.nn.functional.linear(activations, weight))

    model = load_model("full-shapes", str(device), dtype=torch.bfloat16)
    model.min_bucket_rows = 0
    vit = model.model.image_encoder
    pixels = torch.randn(batch, 3, 224, 224, device=device, dtype=torch.bfloat16)
    measure("vit-b/16 alone, eager", lambda: vit(pixels), images=batch)
    encoded = {}
    for share in (0.5, 1.0):
        _, decoded = bench_posts(model, batch, share)
        encoded[share] = model.processor.encode_uint8([d[0] for d in decoded], [d[1] for d in decoded],
                                                      pin_memory=device.type == "cuda")
        measure(f"radm forward, image share {share}, eager", lambda s=share: model.probabilities(encoded[s]),
                posts=batch)
    if device.type == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)
        measure("vit-b/16 alone, eager, cuDNN attention off", lambda: vit(pixels), images=batch)
        for share in (0.5, 1.0):
            measure(f"radm forward, image share {share}, eager, cuDNN attention off",
                    lambda s=share: model.probabilities(encoded[s]), posts=batch)
        torch.backends.cuda.enable_cudnn_sdp(True)
    if time.monotonic() < deadline - 90:
        compiled = torch.compile(vit)
        measure("vit-b/16 alone, torch.compile", lambda: compiled(pixels), images=batch)
    if time.monotonic() < deadline - 120:
        model.forward = torch.compile(model.model, dynamic=True)
        measure("radm forward, image share 0.5, torch.compile dynamic", lambda: model.probabilities(encoded[0.5]),
                posts=batch)
