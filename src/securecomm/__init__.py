"""securecomm — Secure Communities end to end: detainer policies as code, decided and explained."""

from securecomm.decide import decide
from securecomm.rules.loader import load_policy

__all__ = ["decide", "load_policy"]
