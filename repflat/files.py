"""Reading and writing files safely in directories someone else may have made.

The threat model (README, "Reliability"): a run, experiment or analysis directory may
come from someone else. repflat then reads only regular files inside it, never follows
a link it did not make, spends time and memory bounded by what the input really holds,
and writes only into directories it claimed (repflat.rundir.lock). Every read of a file from
such a directory goes through `read_bytes` (or a reader built on it); every write goes
through `atomic_path`.

- `open_regular`: O_NOFOLLOW and O_NONBLOCK, then fstat: a link, a FIFO, a device or a
  directory is refused before a byte is read (a FIFO would block, /dev/zero never ends).
- `read_bytes`/`read_text`/`read_json`/`load_yaml`/`read_csv`: size caps, strict UTF-8,
  and parser limits (JSON nesting and integer length; YAML aliases that expand past a
  node budget).
- `no_links`/`inside`: no component below a given directory is a link, directories
  included; `read_text` refuses a file with a second name (a hard link), since text is
  what reports copy out.
- `atomic_path`: a fresh temporary sibling (created O_EXCL | O_NOFOLLOW) moved over the
  target with `os.replace`, which replaces a planted link instead of writing through it.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from repflat.errors import UserError, expected, first_line
from repflat.yamlnumbers import load as yaml_load

YAML_LIMIT = 1 << 20        # configs, experiment files, extract.yaml: a few kB in practice
JSON_LIMIT = 64 << 20       # manifests of many arrays, analysis records, run.json
TEXT_LIMIT = 1 << 30        # CSV tables (bounded by memory, not parse blow-up)
YAML_NODES = 100_000        # values a YAML document may expand to, aliases followed
CSV_LINE = 1 << 16          # characters in one line of a table (repflat's: a few hundred)
CSV_COLUMNS = 1_000         # columns of a table (repflat's: under 20)
TMP_SUFFIX = ".repflat-tmp"
TOKEN = secrets.token_hex(8)
"""This process's share of its temporary names: a file of the user's that merely looks
like a temporary (`.thesis.2024.tmp`) is never taken for repflat's."""
TEMPORARY = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{16}\.repflat-tmp$")
"""The form of every temporary name repflat makes (`temporary_name`): the only names a
cleanup after a killed writer removes (the pid in group 1)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path, where: str, *, follow: bool = False) -> int:
    """A read-only descriptor of the regular file `path`; a UserError for a missing file,
    a symbolic link (the last component; unless `follow`, for a path the user named
    himself), or anything that is not a regular file."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link; repflat reads only regular "
                            "files inside the directories it is given, never through links",
                            argument=where) from None
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            raise expected(where, "an existing file", str(path)) from None
        if err.errno == errno.EISDIR:
            raise expected(where, "a regular file", f"{path} (a directory)") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise expected(where, "a regular file", f"{path} ({_kind(mode)})")
    return fd


def is_regular(path: str | Path) -> bool:
    """`path` is a regular file and not a link (what `open_regular` would accept)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def single_link(fd: int, path: str | Path, where: str, doing: str) -> None:
    """Refuse a file that has another name (a hard link): writing over it, or copying
    its text into a report, would reach that other file, which may lie anywhere on the
    same file system (a link cannot be told from the file it links)."""
    links = os.fstat(fd).st_nlink
    if links > 1:
        raise UserError(f"{path} has {links} names (a hard link to a file that may lie "
                        f"anywhere); refusing to {doing} it", argument=where)


def read_bytes(path: str | Path, where: str, limit: int, *, follow: bool = False,
               single: bool = False) -> bytes:
    """The contents of a regular file of at most `limit` bytes (see `open_regular`);
    `single`: refused if it has another name (a hard link)."""
    fd = open_regular(path, where, follow=follow)
    try:
        if single:
            single_link(fd, path, where, "read")
        size = os.fstat(fd).st_size
        if size > limit:
            raise UserError(f"{path} is {size:,} bytes, more than the {limit:,} such a "
                            "file may hold; refusing to read it", argument=where)
        chunks, total = [], 0
        while block := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(block)
            total += len(block)
            if total > limit:  # it grew while being read
                raise UserError(f"{path} is larger than {limit:,} bytes", argument=where)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str | Path, where: str, limit: int = TEXT_LIMIT, *,
              follow: bool = False) -> str:
    """A text file's contents. Inside a directory repflat was given (not `follow`) the
    file must have one name: text (configs, records, metrics, manifests) is what reports
    copy out, and a hard link would copy a private file there."""
    try:
        return read_bytes(path, where, limit, follow=follow, single=not follow).decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text (byte {err.start})", argument=where) from None


def _one_value_per_key(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refusing a key given twice with two values (json.loads would keep
    the last silently: a manifest saying two checksums for one split says neither)."""
    out: dict = {}
    for key, value in pairs:
        if key in out and out[key] != value:
            raise ValueError(f"duplicate key {key[:60]!r} with two different values")
        out[key] = value
    return out


def parse_json(text: str, where: str, path: str | Path) -> object:
    """JSON text (of the file `path`), refused with one line when malformed, nested too
    deeply (Python's recursion limit), holding integers past Python's digit limit, or
    giving one key of an object two different values."""
    try:
        return json.loads(text, object_pairs_hook=_one_value_per_key)
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(err, RecursionError) else first_line(err)
        raise UserError(f"{path} is not valid JSON ({reason})", argument=where) from None


def read_json(path: str | Path, where: str, limit: int = JSON_LIMIT) -> object:
    return parse_json(read_text(path, where, limit), where, path)


def _expanded_size(data: object, where: str, path: str | Path, budget: int) -> None:
    """Refuse `data` if, aliases followed, it holds more than `budget` values or a cycle."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(obj: object) -> int:
        if not isinstance(obj, (dict, list)):
            return 1
        key = id(obj)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise UserError(f"{path} is not usable YAML (an alias refers to itself)",
                            argument=where)
        active.add(key)
        items = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
        total = 1
        for item in items:
            total += size(item)
            if total > budget:
                raise UserError(f"{path} expands to more than {budget:,} values through YAML "
                                "aliases; refusing to read it", argument=where)
        active.discard(key)
        sizes[key] = total
        return total

    size(data)


def load_yaml(text: str, where: str, path: str | Path, *, budget: int = YAML_NODES) -> object:
    """YAML text (of the file `path`) through PyYAML's safe loader (no Python objects),
    bounded: aliases are followed only up to `budget` values in all, nesting only to
    Python's recursion limit."""
    try:
        data = yaml_load(text)  # the safe loader, with YAML 1.2's floats
    except yaml.MarkedYAMLError as err:  # say where, as an editor's file:line:col
        mark = err.problem_mark
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = " ".join(filter(None, (err.context, err.problem))) or type(err).__name__
        raise UserError(f"{path}{at} is not valid YAML ({problem})", argument=where) from None
    except (yaml.YAMLError, ValueError) as err:  # ValueError: an integer past Python's digits
        limit = None if isinstance(err, yaml.YAMLError) else 160
        raise UserError(f"{path} is not valid YAML ({first_line(err, limit)})",
                        argument=where) from None
    except RecursionError:
        raise UserError(f"{path} is not valid YAML (nested too deeply)", argument=where) from None
    _expanded_size(data, where, path, budget)
    return data


def read_yaml_file(path: str | Path, where: str, limit: int = YAML_LIMIT, *,
                   follow: bool = False) -> object:
    return load_yaml(read_text(path, where, limit, follow=follow), where, path)


MISSING_WORDS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                 "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
"""What pandas reads as a missing value by default: kept for numeric columns only."""


def check_table(text: str, path: str | Path, where: str) -> None:
    """Refuse CSV `text` with a line longer than CSV_LINE characters or more than
    CSV_COLUMNS columns, checked line by line without copying, before pandas parses it:
    pandas spends hundreds of bytes per cell of a wide table and per character of a long
    field (a 0.4 MB line cost 325 MB). Commas inside quotes count as separators here, so
    the count is an upper bound."""
    start, end, line = 0, 0, 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line += 1
        if end - start > CSV_LINE:
            raise UserError(f"{path} line {line} is {end - start:,} characters long, more than "
                            f"the {CSV_LINE:,} a table's line may hold; refusing to parse it",
                            argument=where)
        if text.count(",", start, end) >= CSV_COLUMNS:
            raise UserError(f"{path} line {line} has more than {CSV_COLUMNS:,} columns, the "
                            "most a table may hold; refusing to parse it", argument=where)
        start = end + 1


def read_csv(path: str | Path, where: str, *, dtype: dict | None = None,
             limit: int = TEXT_LIMIT):
    """The table in `path` as a pandas DataFrame; an empty file gives an empty frame.

    Columns `dtype` maps to `str` are names: only an empty cell is missing there, so a
    layer, an arm or a class called NA, nan, null or None stays that name (pandas would
    read each as a missing value)."""
    import io

    import pandas as pd

    text = read_text(path, where, limit)
    if not text.strip():
        return pd.DataFrame()
    check_table(text, path, where)
    try:
        names = [c for c, kind in (dtype or {}).items() if kind is str]
        if not names:
            return pd.read_csv(io.StringIO(text), dtype=dtype)
        header = pd.read_csv(io.StringIO(text), nrows=0).columns
        missing = {c: [""] if c in names else list(MISSING_WORDS) for c in header}
        return pd.read_csv(io.StringIO(text), dtype=dtype, keep_default_na=False,
                           na_values=missing)
    except (pd.errors.ParserError, ValueError, TypeError) as err:
        raise UserError(f"{path} is not a readable table ({first_line(err)})",
                        argument=where) from None


def numeric_columns(frame, columns, path: Path, where: str):
    """`frame` with `columns` (those present) checked to hold numbers (or blanks)."""
    import pandas as pd

    for column in (c for c in columns if c in frame.columns):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna() & (frame[column].astype(str).str.strip() != "")
        if bad.any():
            raise UserError(f"{path} column {column!r} holds "
                            f"{str(frame[column][bad].iloc[0])[:40]!r}, not a number",
                            argument=where)
        frame[column] = values
    return frame


def inside(root: Path, rel: str, where: str, what: str = "its directory") -> Path:
    """`root / rel`, refusing a path that is absolute or resolves outside `root`
    (through `..` or through a link on the way); `what` names `root` in the error."""
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or "\0" in rel:
        raise expected(where, f"a path relative to {what}", rel)
    try:
        full = (root / rel).resolve()
        base = root.resolve()
    except (OSError, RuntimeError) as err:  # too long, a symlink loop, ...
        raise expected(where, f"a path inside {what}", f"{rel} ({err})") from None
    if not full.is_relative_to(base):
        raise expected(where, f"a path inside {what}", rel)
    no_links(root, rel, where)
    return full


def no_links(root: str | Path, rel: str | Path, where: str) -> Path:
    """`root / rel`, refused if any component of `rel` that exists is a symbolic link,
    directories included (`root` itself, named by the user, may be one): inside a
    directory it is given, repflat reads and writes nothing through a link."""
    path = Path(root)
    for part in Path(rel).parts:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            break
        except OSError as err:
            raise expected(where, f"a path inside {root}", f"{rel} ({err})") from None
        if stat.S_ISLNK(mode):
            raise UserError(f"{path} is a symbolic link; repflat reads and writes inside "
                            "the directories it is given, never through links", argument=where)
    return Path(root) / rel


# ---------------------------------------------------------------- writing

def temporary_name(path: Path) -> Path:
    """The temporary sibling a writer of `path` uses: `.<name>.<pid>.<token>.repflat-tmp`
    (the pid says whether its writer still runs; the token, 16 hex digits drawn by the
    writer, and the suffix make the form one no user file has by accident)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{TOKEN}{TMP_SUFFIX}")


def create_new(path: Path, mode: int = 0o644) -> int:
    """A write descriptor of a new, empty regular file at `path`; whatever was there (a
    leftover, a planted link) is removed first, never written through."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                   | getattr(os, "O_CLOEXEC", 0), mode)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, durable: bool = False) -> Iterator[Path]:
    """Yield a new temporary sibling of `path`; on success it replaces `path` in one step.

    The rename makes the write atomic against a killed process, and replaces a link at
    `path` rather than writing through it. `durable=True` also fsyncs the data first,
    which power loss needs too; it costs milliseconds, so it is kept for files that are
    expensive to lose (checkpoints, feature arrays).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        os.close(create_new(tmp))
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDWR | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is None:  # a failed write() names no file; say which one it was
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | Path, data: bytes, *, durable: bool = False) -> None:
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)


_DIGESTS: dict[tuple[int, int], tuple[tuple[int, int, int], str]] = {}
"""sha256 of files this process hashed: (device, inode) -> ((size, mtime, ctime), hex)."""
MAX_DIGESTS = 1 << 16
SETTLED_NS = 2_000_000_000
"""A file unchanged for this long (ns) when it is hashed has a digest worth remembering:
file times tick coarsely (a jiffy, up to two seconds on some file systems), so a change
made in the same tick as the last one would leave every time as it was."""


def _identity(st: os.stat_result) -> tuple[tuple[int, int], tuple[int, int, int]]:
    return (st.st_dev, st.st_ino), (st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """The sha256 of a regular file's bytes (see `open_regular`). Remembered for
    `known_sha256` when the file had settled (unchanged for SETTLED_NS) before it was
    read, so that any later change shows in its times."""
    started = time.time_ns()
    digest = hashlib.sha256()
    fd = open_regular(path, "file")
    try:
        key, state = _identity(os.fstat(fd))
        while block := os.read(fd, chunk):
            digest.update(block)
        settled = started - max(state[1], state[2]) > SETTLED_NS
        same = _identity(os.fstat(fd)) == (key, state)
    finally:
        os.close(fd)
    if settled and same:
        if len(_DIGESTS) >= MAX_DIGESTS:
            _DIGESTS.clear()
        _DIGESTS[key] = (state, digest.hexdigest())
    return digest.hexdigest()


def known_sha256(path: str | Path) -> str | None:
    """The sha256 this process computed of the file at `path` if it is the same file,
    settled when hashed and unchanged since (size, modification and status-change times:
    the last cannot be set back); else None."""
    try:
        key, state = _identity(os.lstat(path))
    except OSError:
        return None
    known = _DIGESTS.get(key)
    return known[1] if known is not None and known[0] == state else None


def file_sha256(path: str | Path) -> str:
    """The sha256 of the file at `path`: remembered (`known_sha256`) or computed."""
    return known_sha256(path) or sha256_file(path)


# ---------------------------------------------------------------- memory

BUDGET_ENV = "REPFLAT_MEMORY_BUDGET"


def parse_size(text: str, where: str) -> int:
    """'512M', '2G', '1.5g', '1000000' as bytes."""
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    raw = text.strip().lower().removesuffix("b")
    unit = raw[-1:] if raw[-1:] in units and raw[-1:] else ""
    try:
        value = float(raw[: len(raw) - len(unit)])
    except ValueError:
        raise expected(where, "a size such as 512M or 4G", text) from None
    if not value > 0 or value == float("inf"):
        raise expected(where, "a positive size such as 512M or 4G", text)
    return int(value * units[unit])


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where there is no such file)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_budget() -> int:
    """The bytes one array or one analysis step may allocate: $REPFLAT_MEMORY_BUDGET when
    set (e.g. 2G), else half the memory available now (4 GiB where that is unknown).

    Checked before allocating, from shapes alone, so an input whose header promises more
    than the machine can hold is refused in one line instead of exhausting memory."""
    env = os.environ.get(BUDGET_ENV)
    if env:
        return parse_size(env, BUDGET_ENV)
    free = available_memory()
    return free // 2 if free else 4 << 30


def check_budget(nbytes: int, where: str, what: str) -> None:
    budget = memory_budget()
    if nbytes > budget:
        raise UserError(f"{what} needs {nbytes / 2**30:.3g} GiB, more than the memory "
                        f"budget of {budget / 2**30:.3g} GiB (set {BUDGET_ENV} to change it)",
                        argument=where)
