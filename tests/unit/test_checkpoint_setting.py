"""MODEL_CHECKPOINT: the worker runs the shipped bootstrap unless told otherwise."""

from pathlib import Path

from core.settings import Settings
from workers.inference.model import resolve_checkpoint


def test_default_is_the_shipped_bootstrap_file():
    path = resolve_checkpoint(Settings(_env_file=None).model.checkpoint)
    assert path is not None and path.name == "bootstrap.pt" and path.is_file()


def test_untrained_and_paths():
    assert resolve_checkpoint("untrained") is None
    assert resolve_checkpoint(None) is None
    assert resolve_checkpoint("/models/radm.pt") == Path("/models/radm.pt")
