"""Reading the analysis side's text tables from directories someone else may have made.

Every CSV goes through `read_csv`: a regular file inside the directory (never a link, a
FIFO or a device; see repflat.rundir.files), UTF-8, parsed by pandas, and refused in one line
naming the file when it is not a table.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from repflat.errors import UserError
from repflat.rundir.files import TEXT_LIMIT, read_text


def read_csv(path: str | Path, where: str, *, dtype: dict | None = None,
             limit: int = TEXT_LIMIT) -> pd.DataFrame:
    """The table in `path`; an empty file gives an empty frame."""
    text = read_text(path, where, limit)
    if not text.strip():
        return pd.DataFrame()
    try:
        return pd.read_csv(io.StringIO(text), dtype=dtype)
    except (pd.errors.ParserError, ValueError, TypeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise UserError(f"{where}: {path} is not a readable table ({first})") from None


def numeric_columns(frame: pd.DataFrame, columns, path: Path, where: str) -> pd.DataFrame:
    """`frame` with `columns` (those present) checked to hold numbers (or blanks)."""
    for column in (c for c in columns if c in frame.columns):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna() & (frame[column].astype(str).str.strip() != "")
        if bad.any():
            raise UserError(f"{where}: {path} column {column!r} holds "
                            f"{str(frame[column][bad].iloc[0])[:40]!r}, not a number")
        frame[column] = values
    return frame
