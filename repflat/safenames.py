"""The one check every name read from a directory goes through before it is used.

Names from a directory someone else made (layers and splits of a manifest, class names,
arms, strategies, swept values, run directories, an analysis's table columns) reach
tables, figures, terminal lines and report pages, and arm names become directory names:
`safe_label` refuses what cannot be shown as it is (control characters, escape sequences,
bidirectional overrides, a length past the limit, checked first), `safe_name` adds the
rules of one path component. Its own module beside `repflat.files`: names are not files.
"""
from __future__ import annotations

from repflat.errors import expected


NAME_LIMIT = 100
"""Longest arm, layer or split name: it becomes a file or directory name."""
LABEL_LIMIT = 200
"""Longest name that is only shown (a class name: ImageNet's longest is under 100)."""


def _unprintable(c: str) -> bool:
    """A character that moves a terminal's cursor or reorders text rather than showing
    itself: C0 and C1 controls (NUL, ESC, CSI), DEL, line and paragraph separators, and
    the bidirectional overrides and isolates that make `cat\u202egnp.exe` read
    `catexe.png`."""
    o = ord(c)
    return o < 32 or 127 <= o < 160 or o in (0x2028, 0x2029) or 0x202A <= o <= 0x202E or (
        0x2066 <= o <= 0x2069)


def _shown(name: object) -> object:
    """`name` as an error quotes it: a long one cut (a million characters make one line)."""
    return name if not isinstance(name, str) or len(name) <= 60 else f"{name[:60]}… ({len(name)} characters)"


def safe_label(name: object, where: str, limit: int = LABEL_LIMIT) -> str:
    """`name` if it can be shown as it is in a table, a figure, a terminal line or a
    report: a string of 1 to `limit` characters without control characters (NUL, escape
    sequences, C1 controls, line separators, bidirectional overrides). The one check
    every name read from a directory goes through: layers and splits of a manifest
    (`limit` 100), class names, strategies, swept values, run directories; arms, which
    name run directories, through `safe_name`, which adds the file-name rules. The
    length is checked before anything else looks at the name."""
    if not isinstance(name, str) or not 0 < len(name) <= limit or any(map(_unprintable, name)):
        raise expected(where, f"a name of 1 to {limit} characters without control characters",
                       _shown(name))
    return name


def safe_name(name: object, where: str) -> str:
    """`name` if it can be one path component that stays where it is put: `safe_label`'s
    rules with 1 to 100 characters, not `.`-led (no `..`, no hidden files), no separator.
    Arm, layer and split names become directory and file names."""
    if (not isinstance(name, str) or not 0 < len(name) <= NAME_LIMIT or name.startswith(".")
            or any(c in "/\\" or _unprintable(c) for c in name)):
        raise expected(where, f"a name of 1 to {NAME_LIMIT} characters, not starting with '.', "
                       "without '/', '\\' or control characters", _shown(name))
    return name
