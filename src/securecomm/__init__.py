"""securecomm — Secure Communities end to end: detainer policies as code, decided and
explained, and the whole pipeline simulated on the real rollout."""

from securecomm.law.decide import decide
from securecomm.law.loader import load_policy
from securecomm.model.simulation import Reform, simulate

__all__ = ["Reform", "decide", "load_policy", "simulate"]
