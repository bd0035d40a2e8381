"""Writing files whole or not at all: to a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

import polars as pl

ISO_SECONDS: Final = "%Y-%m-%dT%H:%M:%S"
# The table types each output takes: per-case decisions may be JSON lines too.
DECISION_TYPES: Final = (".jsonl", ".ndjson", ".csv", ".parquet")
TABLE_TYPES: Final = (".csv", ".parquet")


class OutputError(ValueError):
    """The output file cannot be written as asked."""


def check_out_path(out: Path, types: tuple[str, ...]) -> None:
    """Refuse an unknown file type or a directory before any work is done."""
    if out.suffix.lower() not in types:
        listed = ", ".join(types[:-1]) + f" or {types[-1]}"
        raise OutputError(f"--out {out}: unknown file type {out.suffix!r}; use {listed}")
    if out.exists() and out.is_dir():
        raise OutputError(f"--out {out}: is a directory")


def text_columns(frame: pl.DataFrame, flat_lists: bool = False) -> pl.DataFrame:
    """Text formats: date-times as ISO text, enums as strings; CSV holds no lists ("2;3;5")."""
    frame = frame.with_columns(pl.col(pl.Datetime).dt.strftime(ISO_SECONDS), pl.col(pl.Enum).cast(pl.String))
    if flat_lists:
        frame = frame.with_columns(pl.col(pl.List(pl.UInt32)).list.eval(pl.element().cast(pl.String)).list.join(";"))
    return frame


def _replace_atomically(out: Path, write: Callable[[str], None]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=out.suffix)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_frame(frame: pl.DataFrame, out: Path, types: tuple[str, ...] = DECISION_TYPES) -> None:
    """Write a table as .csv, .parquet or JSON lines (by the suffix), whole or not at all."""
    check_out_path(out, types)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        _replace_atomically(out, frame.write_parquet)
    elif suffix == ".csv":
        _replace_atomically(out, text_columns(frame, flat_lists=True).write_csv)
    else:
        _replace_atomically(out, text_columns(frame, flat_lists=False).write_ndjson)


def write_text(out: Path, text: str) -> None:
    """Write a text file (UTF-8), whole or not at all."""
    _replace_atomically(out, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))
