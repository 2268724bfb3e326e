"""RADM: multimodal image-text sentiment model."""

from workers.radm.config import RADMConfig
from workers.radm.model import RADM

__all__ = ["RADM", "RADMConfig"]
