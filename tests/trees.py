"""What a directory tree holds, to show a command changed nothing (or exactly what)."""
from __future__ import annotations

import hashlib
from pathlib import Path


def digest(root: Path, skip: tuple[str, ...] = ()) -> str:
    """sha256 over every path under `root` and every file's bytes (names in `skip` left out)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.name in skip:
            continue
        h.update(str(p.relative_to(root)).encode() + (p.read_bytes() if p.is_file() else b"/"))
    return h.hexdigest()
