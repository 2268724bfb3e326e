"""Trainer, feature cache and the train/eval commands, end to end on a tiny MVSA-Single fixture (CPU, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from monitor.cli.main import main
from workers.radm import RADM, RADMConfig
from workers.radm.processor import RADMProcessor
from workers.training.examples import Example
from workers.training.sources import CachedSource, LiveSource, make_source
from workers.training.trainer import Trainer, TrainSettings, evaluate, warmup_linear

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

WORDS = {"positive": "love great happy wonderful", "negative": "hate awful sad terrible",
         "neutral": "table report monday schedule"}


def make_mvsa_fixture(root: Path, count: int = 36) -> Path:
    """MVSA-Single layout whose text words give the label away, so a tiny model can learn it in two epochs."""
    labels = ["positive", "negative", "neutral"]
    lines = ["ID\ttext,image"]
    (root / "data").mkdir(parents=True)
    for post_id in range(1, count + 1):
        label = labels[post_id % 3]
        lines.append(f"{post_id}\t{label},neutral")
        (root / "data" / f"{post_id}.txt").write_text(f"{WORDS[label]} post {post_id}")
        colour = (post_id * 7 % 255, 80, 160)
        Image.new("RGB", (20, 16), colour).save(root / "data" / f"{post_id}.jpg", format="JPEG")
    (root / "labelResultAll.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def mvsa(tmp_path) -> Path:
    return make_mvsa_fixture(tmp_path / "mvsa")


def tiny_examples(count: int = 12, with_images: bool = True, tmp: Path | None = None) -> list[Example]:
    out = []
    for i in range(count):
        image = None
        if with_images and tmp is not None and i % 2:
            image = tmp / f"{i}.jpg"
            Image.new("RGB", (20, 20), (i * 20 % 255, 10, 90)).save(image, format="JPEG")
        label = ["negative", "neutral", "positive"][i % 3]
        out.append(Example(f"{WORDS[label]} {i}" if i != 5 else "   ", image, i % 3, str(i)))
    return out


def test_warmup_then_linear_decay():
    factor = warmup_linear(total_steps=10, warmup_ratio=0.2)
    assert [round(factor(s), 3) for s in range(10)] == [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]
    assert warmup_linear(4, 0.0)(0) == 1.0


def test_cached_features_give_the_same_logits_as_the_full_model(tmp_path):
    """The cache must train the network the worker runs: same logits, incl. blank text and missing images."""
    torch.manual_seed(0)
    config = RADMConfig.tiny(freeze_text_encoder=True, freeze_image_encoder=True)
    model = RADM(config).eval()
    processor = RADMProcessor(config)
    examples = tiny_examples(12, tmp=tmp_path)
    cached = CachedSource(model, processor, examples, torch.device("cpu"), batch_size=5, dtype=torch.float32)
    live = LiveSource(processor, examples)
    with torch.no_grad():
        expected = live.logits(model, range(12), torch.device("cpu"))
        with cached.attach(model):
            got = cached.logits(model, [3, 0, 11, 5, 1, 2, 4, 6, 7, 8, 9, 10], torch.device("cpu"))
    order = [3, 0, 11, 5, 1, 2, 4, 6, 7, 8, 9, 10]
    torch.testing.assert_close(got, expected[order], atol=1e-5, rtol=1e-4)
    assert len(cached.image_features) == 6
    # The real encoders are back after `attach`: the model still saves and runs on raw inputs.
    assert type(model.text_encoder).__name__ == "TextEncoder"


def test_make_source_caches_only_frozen_encoders(tmp_path):
    examples = tiny_examples(3)
    trainable = RADM(RADMConfig.tiny())
    assert isinstance(make_source(trainable, RADMProcessor(trainable.config), examples, torch.device("cpu")),
                      LiveSource)
    frozen = RADM(RADMConfig.tiny(freeze_text_encoder=True, freeze_image_encoder=True))
    assert isinstance(make_source(frozen, RADMProcessor(frozen.config), examples, torch.device("cpu")), CachedSource)


def _fit(out: Path, examples: list[Example], settings: TrainSettings, resume: bool = False) -> Trainer:
    torch.manual_seed(0)
    model = RADM(RADMConfig.tiny())
    processor = RADMProcessor(model.config)
    trainer = Trainer(model, settings, out, torch.device("cpu"))
    trainer.fit(LiveSource(processor, examples), LiveSource(processor, examples[:6]), resume=resume)
    return trainer


def test_resume_continues_exactly(tmp_path, monkeypatch):
    """Stop after epoch 1 of 2, resume: the weights equal those of an uninterrupted run."""
    examples = tiny_examples(12, tmp=tmp_path)
    settings = TrainSettings(epochs=2, batch_size=4, lr=1e-3, grad_accum=2, patience=5)
    straight = _fit(tmp_path / "straight", examples, settings)

    original = Trainer._train_epoch

    def crash_in_second_epoch(self, source, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, source, epoch)

    monkeypatch.setattr(Trainer, "_train_epoch", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "resumed", examples, settings)
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    resumed = _fit(tmp_path / "resumed", examples, settings, resume=True)

    assert resumed.start_epoch == 1 and len(resumed.history) == 2
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, msg=name)
    assert resumed.optimizer.state_dict()["state"].keys() == straight.optimizer.state_dict()["state"].keys()
    assert resumed.scheduler.last_epoch == straight.scheduler.last_epoch == 4  # 2 epochs x ceil(3 batches / 2)


def test_early_stopping_on_validation_f1(tmp_path):
    examples = tiny_examples(9)
    settings = TrainSettings(epochs=6, batch_size=9, lr=0.0, warmup_ratio=0.0, patience=2)  # lr 0: never improves
    trainer = _fit(tmp_path / "run", examples, settings)
    assert len(trainer.history) == 3 and trainer.best_epoch == 1  # epochs count from 1 (fractions: mid-epoch)
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()


def test_train_resume_and_eval_commands(mvsa, tmp_path):
    out = tmp_path / "run"
    runner = CliRunner()
    base = ["train", "--dataset", "mvsa-single", "--data", str(mvsa), "--config", "tiny", "--out", str(out),
            "--batch-size", "8", "--lr", "3e-3", "--warmup", "0.1", "--device", "cpu"]
    first = runner.invoke(main, [*base, "--epochs", "1"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(main, [*base, "--epochs", "2", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert metrics["data"]["train"]["size"] == 29 and metrics["test"]["examples"] == 3  # 36 -> 29/4/3
    assert (out / "confusion_test.png").is_file() and RADM.load(out / "best.pt").config.labels == (
        "negative", "neutral", "positive")

    eval_out = tmp_path / "eval"
    result = runner.invoke(main, ["eval-split", "--checkpoint", str(out / "best.pt"), "--dataset", "mvsa-single",
                                  "--data", str(mvsa), "--split", "test", "--out", str(eval_out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "weighted F1" in result.output
    report = json.loads((eval_out / "metrics_test.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert report["weighted_f1"] == pytest.approx(metrics["test"]["weighted_f1"])
    with Image.open(eval_out / "confusion_test.png") as image:
        assert image.format == "PNG"


def test_train_learns_the_fixture(mvsa, tmp_path):
    """A few epochs on word-coded labels: the tiny model must beat chance on validation by a wide margin."""
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--dataset", "mvsa-single", "--data", str(mvsa), "--config", "tiny",
                                       "--out", str(out), "--epochs", "6", "--batch-size", "4", "--lr", "3e-3",
                                       "--patience", "6", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert max(h["val_accuracy"] for h in metrics["history"]) >= 0.75


def test_eval_refuses_other_labels(mvsa, tmp_path):
    model = RADM(RADMConfig.tiny(num_labels=2, labels=("a", "b")))
    model.save(tmp_path / "two.pt")
    result = CliRunner().invoke(main, ["eval-split", "--checkpoint", str(tmp_path / "two.pt"),
                                       "--dataset", "mvsa-single",
                                       "--data", str(mvsa), "--out", str(tmp_path / "e"), "--device", "cpu"])
    assert result.exit_code != 0 and "labels" in result.output


def test_evaluate_uses_the_model_label_order(tmp_path):
    torch.manual_seed(0)
    model = RADM(RADMConfig.tiny())
    examples = tiny_examples(6)
    metrics = evaluate(model, LiveSource(RADMProcessor(model.config), examples), torch.device("cpu"))
    assert metrics["labels"] == list(model.config.labels) and metrics["examples"] == 6


def test_cached_source_with_other_images_reuses_texts(tmp_path):
    torch.manual_seed(0)
    config = RADMConfig.tiny(freeze_text_encoder=True, freeze_image_encoder=True)
    model = RADM(config).eval()
    processor = RADMProcessor(config)
    examples = tiny_examples(6, with_images=False)
    picture = tmp_path / "p.jpg"
    Image.new("RGB", (20, 20), (250, 10, 10)).save(picture, format="JPEG")
    with_photo = [Example(e.text, picture, e.label, e.id) for e in examples]
    base = CachedSource(model, processor, examples, torch.device("cpu"), dtype=torch.float32)
    derived = base.with_images(model, processor, with_photo, torch.device("cpu"))
    assert derived.text_states is base.text_states and len(derived.image_features) == 1
    with torch.no_grad():
        expected = LiveSource(processor, with_photo).logits(model, range(6), torch.device("cpu"))
        with derived.attach(model):
            torch.testing.assert_close(derived.logits(model, range(6), torch.device("cpu")), expected, atol=1e-5,
                                       rtol=1e-4)
    with pytest.raises(ValueError, match="same texts"):
        base.with_images(model, processor, with_photo[::-1], torch.device("cpu"))


def test_optuna_search_keeps_the_best_trial(mvsa, tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "search"
    result = CliRunner().invoke(main, ["train", "--dataset", "mvsa-single", "--data", str(mvsa), "--config", "tiny",
                                       "--out", str(out), "--epochs", "1", "--batch-size", "8", "--optuna-trials", "2",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    search = metrics["optuna"]
    assert len(search["trials"]) == 2 and set(search["best_params"]) == {"lr", "weight_decay", "dropout"}
    assert search["best_value"] == max(t["value"] for t in search["trials"])
    assert RADM.load(out / "best.pt").config.dropout == pytest.approx(search["best_params"]["dropout"])
