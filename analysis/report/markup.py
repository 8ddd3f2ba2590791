"""The report: one document, written as Markdown (for code hosts) and HTML (for browsers).

A report is a list of blocks (heading, paragraph, table, image, code, collapsible
details); each renderer turns the same blocks into its format, so the two files always
say the same thing. Images are files beside the report; the HTML page can also carry
them inside itself (`embed_images`), so it stays whole when moved or mailed alone.

Names in the blocks come from files someone else may have written (layer, arm and metric
names, experiment descriptions), so both renderers treat every string as text: the HTML
page is a Jinja2 template with autoescaping (templates/report.html), ids are made of
[a-z0-9-] only, and the Markdown escapes HTML characters as entities and Markdown's own
with backslashes (`md_text`).
"""
from __future__ import annotations

import base64
import functools
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd

from repflat.files import write_text


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    name: str | None = None
    """The HTML table's id (so a reader, or a test, can find it)."""
    wrap: int = 0
    """How many leading columns hold names that may wrap (at their hyphens) in HTML, so a
    wide table fits the page before its numbers scroll out of sight (at most 4)."""


@dataclass(frozen=True)
class Image:
    path: str  # relative to the report
    caption: str


@dataclass(frozen=True)
class Code:
    text: str
    language: str = ""


@dataclass(frozen=True)
class Details:
    """Blocks folded away under a one-line summary (long tables, full configs)."""

    summary: str
    blocks: list = field(default_factory=list)


@dataclass(frozen=True)
class Items:
    """A bulleted list of sentences (the verdict: one per layer)."""

    items: list = field(default_factory=list)
    name: str | None = None
    """The HTML list's id."""


Block = Heading | Paragraph | Table | Image | Code | Details | Items


def cell_text(value: object) -> str:
    """A table cell as both renderers show it: its text, a missing value as —."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "—"
    return str(value)


# ---------------------------------------------------------------- Markdown

# Backslash-escaped wherever they occur: emphasis, code spans, links, tables, headings,
# GitHub's strikethrough and math. Characters HTML cares about become entities instead,
# so a name cannot open a tag even where a code host passes raw HTML through.
MD_SPECIALS = re.compile(r"([\\`*_\[\]|#~$])")
MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def one_line(text: object) -> str:
    """Runs of whitespace (newlines too) as one space: HTML shows text so, and a newline
    inside Markdown could start a block (a heading, a list) of its own."""
    return " ".join(str(text).split())


def md_text(text: object) -> str:
    """`text` as inline Markdown that shows exactly it (on one line): no markup, no HTML."""
    s = re.sub(r"[&<>]", lambda m: MD_ENTITIES[m.group()], one_line(text))
    return MD_SPECIALS.sub(r"\\\1", s)


def md_block(text: object) -> str:
    """`text` as a Markdown paragraph: inline escapes, and none of its first characters
    may open a list or a rule ("- x", "+ x", "---", "1. x", "1) x")."""
    s = md_text(text)
    if s and s[0] in "-+":
        return "\\" + s
    return re.sub(r"^(\d{1,9})([.)])(?=\s|$)", r"\1\\\2", s)


def md_fence(text: str) -> str:
    """A backtick fence longer than any run of backticks inside `text`."""
    longest = max((len(r) for r in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render_markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * _level(b.level)} {md_text(b.text)}")
        elif isinstance(b, Paragraph):
            out.append(md_block(b.text))
        elif isinstance(b, Table):
            cols = [md_text(c) for c in b.frame.columns]
            if not cols:
                continue
            rows = [" | ".join(cols), " | ".join("---" for _ in cols)]
            rows += [" | ".join(md_text(cell_text(v)) for v in r)
                     for r in b.frame.itertuples(index=False)]
            out.append("\n".join(f"| {r} |" for r in rows))
        elif isinstance(b, Items):
            out.append("\n".join(f"- {md_text(i)}" for i in b.items))
        elif isinstance(b, Image):
            caption = md_text(b.caption)
            out.append(f"![{caption}]({b.path})" + (f"\n\n*{caption}*" if caption else ""))
        elif isinstance(b, Code):
            text, lang = b.text.rstrip(), re.sub(r"[^A-Za-z0-9_+-]", "", b.language)
            fence = md_fence(text)
            out.append(f"{fence}{lang}\n{text}\n{fence}")
        elif isinstance(b, Details):  # GitHub renders Markdown inside <details> after a blank line
            # The summary sits in raw HTML, where only entities escape (backslashes would show).
            out.append(f"<details><summary>{html.escape(one_line(b.summary))}</summary>\n\n"
                       + render_markdown(b.blocks).rstrip() + "\n\n</details>")
    return "\n\n".join(out) + "\n"


# ---------------------------------------------------------------- HTML

@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)


def _level(level: object) -> int:
    return min(max(int(level), 1), 6)


class Ids:
    """Element ids made from any text: only a-z, 0-9 and '-', at most 60 characters, and
    unique on the page (a repeat gets -2, -3, ...)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def __repr__(self) -> str:
        return f"Ids({len(self.taken)} taken)"

    def take(self, text: object, prefix: str = "") -> str:
        base = prefix + (re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:60].strip("-")
                         or "section")
        found, k = base, 1
        while found in self.taken:
            k += 1
            found = f"{base}-{k}"
        self.taken.add(found)
        return found


def _image_src(path: str, embed_from: Path | None) -> str:
    if embed_from is None:
        return path
    data = base64.b64encode((embed_from / path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _view(b: Block, ids: Ids, embed_from: Path | None) -> dict:
    """What the template needs of one block, as plain text it escapes itself."""
    if isinstance(b, Heading):
        return {"kind": "heading", "level": _level(b.level), "id": ids.take(b.text), "text": b.text}
    if isinstance(b, Paragraph):
        return {"kind": "paragraph", "text": b.text}
    if isinstance(b, Table):
        return {"kind": "table", "id": ids.take(b.name, "table-") if b.name else None,
                "wrap": min(max(int(b.wrap), 0), 4),
                "columns": [str(c) for c in b.frame.columns],
                "rows": [[cell_text(v) for v in r] for r in b.frame.itertuples(index=False)]}
    if isinstance(b, Items):
        return {"kind": "items", "id": ids.take(b.name, "list-") if b.name else None,
                "entries": [str(i) for i in b.items]}
    if isinstance(b, Image):
        return {"kind": "image", "src": _image_src(b.path, embed_from), "caption": b.caption}
    if isinstance(b, Code):
        return {"kind": "code", "text": b.text.rstrip()}
    if isinstance(b, Details):
        return {"kind": "details", "summary": b.summary,
                "blocks": [_view(c, ids, embed_from) for c in b.blocks]}
    raise TypeError(f"not a report block: {type(b).__name__}")


def render_html(blocks: list[Block], title: str, *, embed_from: Path | None = None,
                lead: int = 0) -> str:
    """The page; with `embed_from` (the report's directory) images are carried inside it.
    The first `lead` blocks (the verdict) come before the table of contents, so the first
    screen holds them."""
    ids = Ids()
    views = [_view(b, ids, embed_from) for b in blocks]
    sections = [(v["id"], v["text"]) for v in views if v["kind"] == "heading" and v["level"] == 2]
    return _environment().get_template("report.html").render(
        title=title, lead=views[:lead], blocks=views[lead:], nav=sections if len(sections) > 3 else [])


def write_report(out_dir: Path, blocks: list[Block], title: str, *,
                 embed_images: bool = True, lead: int = 0) -> list[Path]:
    """report.md and report.html in `out_dir`, where the blocks' images already are; the
    first `lead` blocks above the page's table of contents (render_html)."""
    md, page = out_dir / "report.md", out_dir / "report.html"
    write_text(md, render_markdown([Heading(title, 1), *blocks]))
    write_text(page, render_html(blocks, title, embed_from=out_dir if embed_images else None,
                                 lead=lead))
    return [md, page]
