"""Replaying real records: ICE detainer data and jail extracts imported to the case schema,
decided under any policy, and set beside what actually happened (docs/replay.md)."""

from securecomm.replay.mapping import load_mapping
from securecomm.replay.run import Replay, import_source, replay

__all__ = ["Replay", "import_source", "load_mapping", "replay"]
