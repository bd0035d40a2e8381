"""Writing per-case decisions: the whole file or nothing (a temporary file, then a rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Final

import polars as pl

OUT_TYPES: Final = (".csv", ".parquet")
ISO_SECONDS: Final = "%Y-%m-%dT%H:%M:%S"


class OutputError(ValueError):
    """The output file cannot be written as asked."""


def check_out_path(out: Path) -> None:
    """Refuse an unknown file type before any work is done."""
    if out.suffix.lower() not in OUT_TYPES:
        raise OutputError(f"--out {out}: unknown file type {out.suffix!r}; use .csv or .parquet")
    if out.exists() and out.is_dir():
        raise OutputError(f"--out {out}: is a directory")


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV holds no lists: source rows become "2;3;5", date-times ISO text."""
    return frame.with_columns(
        pl.col(pl.List(pl.UInt32)).list.eval(pl.element().cast(pl.String)).list.join(";"),
        pl.col(pl.Datetime).dt.strftime(ISO_SECONDS),
    )


def write_atomically(frame: pl.DataFrame, out: Path) -> None:
    check_out_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=suffix)
    os.close(handle)
    try:
        if suffix == ".parquet":
            frame.write_parquet(temporary)
        else:
            _flat(frame).write_csv(temporary)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
