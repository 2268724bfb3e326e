import torch

from workers.inference import SentimentModel
from workers.radm import RADM, RADMConfig

CONFIG = RADMConfig(vocab_buckets=512, hidden=32, heads=2, image_size=32, patch_size=16)


def batch(size: int = 3, length: int = 6):
    torch.manual_seed(1)
    tokens = torch.randint(1, CONFIG.vocab_buckets, (size, length))
    images = torch.rand(size, 3, CONFIG.image_size, CONFIG.image_size)
    return tokens, images, torch.tensor([True, False, True][:size])


def model() -> RADM:
    torch.manual_seed(0)
    return RADM(CONFIG).eval()


def test_logits_shape():
    assert model()(*batch()).shape == (3, CONFIG.num_labels)


def test_eval_mode_is_deterministic():
    net = model()
    assert torch.equal(net(*batch()), net(*batch()))


def test_padding_never_changes_the_result():
    net = model()
    tokens, images, has_image = batch()
    padded = torch.cat([tokens, torch.zeros(3, 5, dtype=torch.long)], dim=1)
    assert torch.allclose(net(tokens, images, has_image), net(padded, images, has_image), atol=1e-5)


def test_missing_image_pixels_are_ignored():
    net = model()
    tokens, images, _ = batch()
    no_image = torch.zeros(3, dtype=torch.bool)
    noise = torch.rand_like(images)
    assert torch.allclose(net(tokens, images, no_image), net(tokens, noise, no_image), atol=1e-6)


def test_text_free_posts_work():
    net = model()
    _, images, has_image = batch()
    assert torch.isfinite(net(torch.zeros(3, 1, dtype=torch.long), images, has_image)).all()


def test_checkpoint_roundtrip(tmp_path):
    original = SentimentModel(model(), torch.device("cpu"), CONFIG.version)
    original.save(tmp_path / "radm.pt")
    loaded = SentimentModel.load(tmp_path / "radm.pt", device="cpu")
    assert loaded.config == CONFIG
    assert torch.equal(original.model(*batch()), loaded.model(*batch()))
