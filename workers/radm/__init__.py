"""RADM: multimodal image-text sentiment model (encoders, MHRA interaction, fusion) and its input processor."""

from workers.radm.config import RADMConfig
from workers.radm.model import RADM

__all__ = ["RADM", "RADMConfig"]
