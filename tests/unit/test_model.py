"""RADM maths on the tiny random config: shapes, masks, missing modalities, MHRA gate, ablations."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from workers.radm import RADM, RADMConfig  # noqa: E402
from workers.radm.attention import ResidualMultiHeadAttention, ScoreGate  # noqa: E402
from workers.radm.layers import InteractionLayer  # noqa: E402
from workers.radm.model import masked_mean  # noqa: E402

CONFIG = RADMConfig.tiny()


def build(**changes) -> RADM:
    torch.manual_seed(0)
    return RADM(CONFIG.replace(**changes)).eval()


@pytest.fixture(scope="module")
def net() -> RADM:
    return build()


def batch(size: int = 3, length: int = 7) -> dict[str, torch.Tensor]:
    """Row 0: text + image; row 1: text with padding, no image; row 2: image only (no text at all)."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1000, 5000, (size, length), generator=generator)
    attention_mask = torch.ones(size, length, dtype=torch.long)
    attention_mask[1, 4:] = 0
    attention_mask[2] = 0
    pixel_values = torch.randn(size, 3, CONFIG.image_size, CONFIG.image_size, generator=generator)
    has_image = torch.tensor([True, False, True])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "pixel_values": pixel_values,
            "has_image": has_image}


def set_gates(model: RADM, bias: float) -> None:
    """Force every MHRA gate to a constant: sigmoid(-1e4) == 0 (closed), sigmoid(1e4) == 1 (open)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ScoreGate):
                module.fc.weight.zero_()
                module.fc.bias.fill_(bias)


def test_logits_shape_follows_num_labels():
    assert build()(**batch()).shape == (3, 3)
    emotions = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
    assert build(num_labels=6, labels=emotions)(**batch()).shape == (3, 6)


def test_eval_mode_is_deterministic_and_train_mode_is_not(net):
    assert torch.equal(net(**batch()), net(**batch()))
    net.train()
    try:
        assert not torch.equal(net(**batch()), net(**batch()))
    finally:
        net.eval()


def test_padding_token_ids_never_change_logits(net):
    plain = batch()
    changed = {**plain, "input_ids": plain["input_ids"].clone()}
    changed["input_ids"][1, 4:] = 7  # row 1's padding
    changed["input_ids"][2] = 42  # row 2 has no text at all
    assert torch.allclose(net(**plain), net(**changed), atol=1e-6)
    longer = {**plain, "input_ids": torch.cat([plain["input_ids"], torch.full((3, 5), 9)], dim=1),
              "attention_mask": torch.cat([plain["attention_mask"], torch.zeros(3, 5, dtype=torch.long)], dim=1)}
    assert torch.allclose(net(**plain), net(**longer), atol=1e-5)


def test_absent_image_pixels_never_change_logits(net):
    plain = batch()
    changed = {**plain, "pixel_values": plain["pixel_values"].clone()}
    changed["pixel_values"][1] = torch.randn_like(changed["pixel_values"][1]) * 100
    logits, other = net(**plain), net(**changed)
    assert torch.equal(logits[1], other[1]) and torch.allclose(logits, other, atol=1e-6)
    # ...while a present image does matter (the test above could fail).
    changed["pixel_values"][0] += 1.0
    assert not torch.allclose(net(**changed)[0], logits[0], atol=1e-4)


def test_rows_do_not_leak_into_each_other(net):
    full = net(**batch())
    for row in range(3):
        alone = {name: tensor[row : row + 1] for name, tensor in batch().items()}
        assert torch.allclose(net(**alone)[0], full[row], atol=1e-5)


def test_text_only_image_only_and_empty_posts_give_finite_logits(net):
    inputs = batch()
    inputs["attention_mask"][0] = 0  # row 0: neither text nor...
    inputs["has_image"][0] = False  # ...image
    logits = net(**inputs)
    assert torch.isfinite(logits).all()
    logits.sum().backward()  # and finite gradients
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    net.zero_grad()


def test_all_masked_attention_row_outputs_zero_context():
    torch.manual_seed(0)
    attention = ResidualMultiHeadAttention(8, 2, dropout=0.0, residual=True)
    queries, keys = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    key_mask = torch.tensor([[True, True, False, False], [False] * 4])
    out, scores = attention(queries, keys, torch.ones(2, 3, dtype=torch.bool), key_mask, torch.randn(2, 2, 3, 4))
    assert torch.isfinite(out).all() and scores.shape == (2, 2, 3, 4)
    assert torch.allclose(out[1], attention.output.bias.expand(3, 8))
    assert torch.equal(attention.zero_context(queries[1]), attention.output.bias.expand(3, 8))


@pytest.mark.parametrize("residual", [True, False])
def test_a_missing_mask_means_every_token_is_real(residual):
    """Images pass no mask (None) so that no pass over their score maps applies one; it must give what a mask
    of ones gives, on both sides, with and without the score gate."""
    torch.manual_seed(0)
    attention = ResidualMultiHeadAttention(8, 2, dropout=0.0, residual=residual)
    queries, keys, previous = torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 2, 3, 4)
    query_mask, key_mask = torch.ones(2, 3, dtype=torch.bool), torch.tensor([[True, True, True, False]] * 2)
    for masks, dense in (((None, None), (query_mask, torch.ones(2, 4, dtype=torch.bool))),
                         ((None, key_mask), (query_mask, key_mask)),
                         ((query_mask, None), (query_mask, torch.ones(2, 4, dtype=torch.bool)))):
        for got, expected in zip(attention(queries, keys, *masks, previous), attention(queries, keys, *dense, previous),
                                 strict=True):
            torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_attention_matches_its_definition():
    """softmax over real keys of the (gated) scores, as the module docstring writes it, computed the plain way."""
    torch.manual_seed(0)
    attention = ResidualMultiHeadAttention(8, 2, dropout=0.0, residual=True)
    queries, keys, previous = torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 2, 3, 4)
    query_mask, key_mask = torch.tensor([[True, True, False]] * 2), torch.tensor([[True, True, True, False]] * 2)
    out, scores = attention(queries, keys, query_mask, key_mask, previous)
    split = attention._split
    current = split(attention.query(queries)) @ split(attention.key(keys)).transpose(-1, -2) / 2.0  # sqrt(4)
    gate = attention.gate(current, previous, query_mask, key_mask)
    mixed = (1 - gate / 2) * current + gate / 2 * previous
    weights = torch.softmax(mixed.masked_fill(~key_mask[:, None, None, :], float("-inf")), dim=-1)
    expected = attention.output((weights @ split(attention.value(keys))).transpose(1, 2).flatten(2))
    torch.testing.assert_close(scores, mixed, atol=1e-5, rtol=0)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_gate_lies_in_unit_interval_per_head():
    gate = ScoreGate(heads=4)
    current, previous = torch.randn(3, 4, 5, 6) * 50, torch.randn(3, 4, 5, 6) * 50
    keep = gate(current, previous, torch.ones(3, 5, dtype=torch.bool), torch.ones(3, 6, dtype=torch.bool))
    assert keep.shape == (3, 4, 1, 1) and (keep >= 0).all() and (keep <= 1).all()


def test_gate_ignores_padding_pairs():
    gate = ScoreGate(heads=2)
    current, previous = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    query_mask, key_mask = torch.tensor([[True, True, False]]), torch.tensor([[True, True, True, False]])
    noisy = previous.clone()
    noisy[:, :, 2] += 100
    noisy[:, :, :, 3] -= 100
    assert torch.equal(gate(current, previous, query_mask, key_mask), gate(current, noisy, query_mask, key_mask))
    noisy[:, :, 0, 0] += 100
    assert not torch.equal(gate(current, previous, query_mask, key_mask), gate(current, noisy, query_mask, key_mask))


def test_closed_gate_equals_plain_attention_and_open_gate_does_not():
    gated, plain = build(), build(rm_rg=True)
    set_gates(gated, bias=-1e4)
    result = plain.load_state_dict(gated.state_dict(), strict=False)
    assert not result.missing_keys and all(".gate." in key for key in result.unexpected_keys)
    assert torch.allclose(gated(**batch()), plain(**batch()), atol=1e-6)
    set_gates(gated, bias=1e4)
    assert not torch.allclose(gated(**batch()), plain(**batch()), atol=1e-4)


def perturb_layer0_scores(model: RADM) -> None:
    """Layer 0 hands layer 1 different (noisy) score maps; its own outputs stay the same."""
    layer0 = model.interaction[0]
    original = layer0.forward

    def forward(*args, **kwargs):
        text, image, scores = original(*args, **kwargs)
        return text, image, {path: s + 3 * torch.randn_like(s) for path, s in scores.items()}

    layer0.forward = forward


@pytest.mark.parametrize(("rm_rg", "gate_bias", "should_change"),
                         [(False, None, True), (False, -1e4, False), (True, None, False)])
def test_residual_scores_flow_from_layer_to_layer_only_through_the_gate(rm_rg, gate_bias, should_change):
    model = build(rm_rg=rm_rg)
    if gate_bias is not None:
        set_gates(model, gate_bias)
    before = model(**batch())
    torch.manual_seed(5)
    perturb_layer0_scores(model)
    after = model(**batch())
    assert (not torch.allclose(before, after, atol=1e-5)) == should_change


def test_every_attention_path_has_its_own_score_stream():
    layer = InteractionLayer(CONFIG, first=False)
    text, image = torch.randn(2, 5, CONFIG.hidden), torch.randn(2, 4, CONFIG.hidden)
    _, _, scores = layer(text, torch.ones(2, 5, dtype=torch.bool), image, torch.arange(2))
    shapes = {path: tuple(s.shape) for path, s in scores.items()}
    heads = CONFIG.heads
    assert shapes == {"text_self": (2, heads, 5, 5), "image_self": (2, heads, 4, 4),
                      "text_to_image": (2, heads, 5, 4), "image_to_text": (2, heads, 4, 5)}


def test_text_only_posts_skip_the_image_paths_and_get_what_masked_image_tokens_gave():
    """The layer computes image paths for the posts with an image only; the old dense form (every post's image
    tokens, masked where there is no image) is the reference."""
    torch.manual_seed(0)
    layer = InteractionLayer(CONFIG, first=True).eval()
    text, image = torch.randn(3, 5, CONFIG.hidden), torch.randn(3, 4, CONFIG.hidden)
    text_mask = torch.ones(3, 5, dtype=torch.bool)
    text_mask[1, 3:] = False
    for has_image in (torch.tensor([True, False, True]), torch.tensor([False, False, False])):
        dense_text, dense_image, _ = layer(text, text_mask, image, torch.arange(3),
                                           image_mask=has_image[:, None].expand(-1, 4))
        rows = has_image.nonzero().squeeze(1)
        sparse_text, sparse_image, scores = layer(text, text_mask, image[rows], rows)
        torch.testing.assert_close(sparse_text, dense_text, atol=1e-6, rtol=0)
        torch.testing.assert_close(sparse_image, dense_image[rows], atol=1e-6, rtol=0)
        assert {path: len(s) for path, s in scores.items() if path != "text_self"} == (
            {"image_self": 2, "text_to_image": 2, "image_to_text": 2} if len(rows) else {})


def test_text_only_posts_fuse_their_text_alone_and_get_what_masked_image_tokens_gave():
    """`fuse` runs a text-only post's text through the fusion layers without image tokens; the old dense form
    (every post's image tokens concatenated, masked where there is no image) is the reference. Two fusion
    layers, so the score gate takes part."""
    model = build(fusion_layers=2)
    torch.manual_seed(1)
    text, image = torch.randn(4, 5, CONFIG.hidden), torch.randn(4, 3, CONFIG.hidden)
    text_mask = torch.ones(4, 5, dtype=torch.bool)
    text_mask[1, 2:] = False
    text_mask[3] = False  # no text either
    for has_image in ([True, False, True, False], [False] * 4, [True] * 4, [False, True, False, False]):
        has_image = torch.tensor(has_image)
        image_mask = has_image[:, None].expand(-1, 3)
        fused, mask, scores = torch.cat([text, image], 1), torch.cat([text_mask, image_mask], 1), None
        for layer in model.fusion:
            fused, scores = layer(fused, mask, scores)
        dense = torch.cat([masked_mean(fused[:, :5], text_mask), masked_mean(fused[:, 5:], image_mask)], dim=-1)
        rows = has_image.nonzero().squeeze(1)
        torch.testing.assert_close(model.fuse(text, text_mask, image[rows], has_image, rows), dense,
                                   atol=1e-6, rtol=0)


def count(model: RADM, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_rm_rg_removes_every_gate():
    # One gate per path in every layer that has a previous layer (layer 0 of each stack has none).
    assert count(build(), ScoreGate) == 4 * (CONFIG.layers - 1) + (CONFIG.fusion_layers - 1)
    assert count(build(fusion_layers=2), ScoreGate) == 4 * (CONFIG.layers - 1) + 1
    assert count(build(rm_rg=True, fusion_layers=2), ScoreGate) == 0


def test_rm_c_removes_cross_modal_paths():
    full, ablated = build(), build(rm_c=True)
    assert all(layer.text_to_image is not None and layer.image_to_text is not None for layer in full.interaction)
    assert all(layer.text_to_image is None and layer.image_to_text is None for layer in ablated.interaction)
    assert count(ablated, ResidualMultiHeadAttention) == 2 * CONFIG.layers + CONFIG.fusion_layers
    # Without cross paths, an interaction layer's text output cannot depend on the image.
    text, text_mask = torch.randn(1, 5, CONFIG.hidden), torch.ones(1, 5, dtype=torch.bool)
    for model, depends in ((ablated, False), (full, True)):
        layer = model.interaction[0]
        a = layer(text, text_mask, torch.randn(1, 4, CONFIG.hidden), torch.arange(1))[0]
        b = layer(text, text_mask, torch.randn(1, 4, CONFIG.hidden), torch.arange(1))[0]
        assert (not torch.allclose(a, b)) == depends


def test_frozen_encoders_get_no_gradients_and_stay_in_eval_mode():
    model = build(freeze_text_encoder=True, freeze_image_encoder=True).train()
    assert not model.text_encoder.training and not model.image_encoder.training and model.fusion.training
    model(**batch()).sum().backward()
    assert all(p.grad is None for p in model.text_encoder.parameters())
    assert all(p.grad is None for p in model.image_encoder.parameters())
    assert model.classifier[-1].weight.grad is not None
    assert model.interaction[1].text_self.attention.gate.fc.weight.grad is not None


def test_unfrozen_encoders_are_trained():
    model = build().train()
    model(**batch()).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.text_encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.image_encoder.parameters())


def test_config_round_trips_through_json():
    import json

    config = RADMConfig.tiny(rm_c=True, extra={"run": "x"})
    assert RADMConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert hash(config) == hash(RADMConfig.from_dict(config.to_dict()))
    full = RADMConfig.full()
    assert (full.text_encoder, full.image_encoder, full.hidden, full.image_size) == (
        "bert-base-uncased", "timm:vit_base_patch16_224", 768, 224)
    with pytest.raises(ValueError, match="labels"):
        RADMConfig.tiny(num_labels=6)
    with pytest.raises(ValueError, match="unknown"):
        RADMConfig.from_dict({"hiddn": 3})
