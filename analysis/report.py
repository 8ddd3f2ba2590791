"""The report: one document, written as Markdown (for code hosts) and HTML (for browsers).

A report is a list of blocks (heading, paragraph, table, image, code, collapsible
details); each renderer turns the same blocks into its format, so the two files always
say the same thing. Images are files beside the report; the HTML page can also carry
them inside itself (`embed_images`), so it stays whole when moved or mailed alone.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.style import arm_order
from repflat.store import write_text


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


Block = Heading | Paragraph | Table | Image | Code | Details


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Paragraph):
            out.append(b.text)
        elif isinstance(b, Table):
            cols = list(b.frame.columns)
            rows = [" | ".join(map(_md_cell, cols)), " | ".join("---" for _ in cols)]
            rows += [" | ".join(_md_cell(v) for v in r) for r in b.frame.itertuples(index=False)]
            out.append("\n".join(f"| {r} |" for r in rows))
        elif isinstance(b, Image):
            out.append(f"![{b.caption}]({b.path})\n\n*{b.caption}*")
        elif isinstance(b, Code):
            out.append(f"```{b.language}\n{b.text.rstrip()}\n```")
        elif isinstance(b, Details):  # GitHub renders Markdown inside <details> after a blank line
            out.append(f"<details><summary>{html.escape(b.summary)}</summary>\n\n"
                       + render_markdown(b.blocks).rstrip() + "\n\n</details>")
    return "\n\n".join(out) + "\n"


CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1150px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.5;font-size:16px}
h1{font-size:1.7em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}.scroll{overflow-x:auto}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}td{white-space:nowrap}th{background:#f3f3f3}
td:first-child,td:nth-child(2),th{text-align:left}img{max-width:100%}figure{margin:1em 0}
figcaption{color:#555;font-style:italic}code,pre{background:#f6f6f6}pre{padding:.6em;
overflow-x:auto;font-size:.85em}details{margin:1em 0}summary{cursor:pointer;font-weight:600}
nav ul{columns:2;padding-left:1.2em}#table-config-differences td{text-align:left}"""


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _image_src(path: str, embed_from: Path | None) -> str:
    if embed_from is None:
        return html.escape(path)
    data = base64.b64encode((embed_from / path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _html_blocks(blocks: list[Block], embed_from: Path | None) -> list[str]:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level} id='{_anchor(b.text)}'>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            out.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            out.append("<div class='scroll'>" + b.frame.to_html(
                index=False, escape=True, border=0,
                table_id=f"table-{b.name}" if b.name else None) + "</div>")
        elif isinstance(b, Image):
            out.append(f"<figure><img src='{_image_src(b.path, embed_from)}' "
                       f"alt='{html.escape(b.caption)}'>"
                       f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
        elif isinstance(b, Code):
            out.append(f"<pre><code>{html.escape(b.text.rstrip())}</code></pre>")
        elif isinstance(b, Details):
            out.append(f"<details><summary>{html.escape(b.summary)}</summary>"
                       + "\n".join(_html_blocks(b.blocks, embed_from)) + "</details>")
    return out


def render_html(blocks: list[Block], title: str, *, embed_from: Path | None = None) -> str:
    """The page; with `embed_from` (the report's directory) images are carried inside it."""
    sections = [b.text for b in blocks if isinstance(b, Heading) and b.level == 2]
    nav = ("<nav><ul>" + "".join(f"<li><a href='#{_anchor(t)}'>{html.escape(t)}</a></li>"
                                 for t in sections) + "</ul></nav>") if len(sections) > 3 else ""
    head = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{nav}")
    return head + "\n".join(_html_blocks(blocks, embed_from)) + "</body></html>\n"


def write_report(out_dir: Path, blocks: list[Block], title: str, *,
                 embed_images: bool = True) -> list[Path]:
    """report.md and report.html in `out_dir`, where the blocks' images already are."""
    md, page = out_dir / "report.md", out_dir / "report.html"
    write_text(md, render_markdown([Heading(title, 1), *blocks]))
    write_text(page, render_html(blocks, title, embed_from=out_dir if embed_images else None))
    return [md, page]


# ---------------------------------------------------------------- tables

def _num(x: float, digits: int) -> str:
    # Below 1e-10 a float64 SVD of float32 features is round-off; say 0 rather than 3e-49.
    return "0" if abs(x) < 1e-10 else f"{x:.{digits}g}"


def mean_std(mean: float, std: float, n: int) -> str:
    """'m ± s' (4 and 2 significant digits); just 'm' for one run or no spread."""
    if n < 2 or _num(std, 2) == "0":
        return _num(mean, 4)
    return f"{_num(mean, 4)} ± {_num(std, 2)}"


TABLE_METRICS = {  # summary metric -> column title
    "largest_singular_value": "σ₁",
    "sum_other_singular_values": "Σ σ₂…",
    "effective_rank": "effective rank",
    "numerical_rank": "numerical rank",
    "theory_dimension": "dim(H)−K+1",
    "residual_variance_share": "variance beyond dim(H)−K+1",
    "pooled_largest_singular_value": "pooled σ₁",
    "pooled_effective_rank": "pooled effective rank",
    "nc1": "NC1",
}


def flattening_table(summary: pd.DataFrame, layer_order: list[str]) -> pd.DataFrame:
    """Rows (layer, arm) at each run's final analysed epoch; cells mean ± std over seeds."""
    final = summary[summary["epoch"] == summary.groupby("arm")["epoch"].transform("max")]
    final = final[final["metric"].isin(TABLE_METRICS)]
    cell = final.assign(text=[mean_std(m, s, n) for m, s, n in
                              zip(final["mean"], final["std"], final["n_runs"])])
    wide = cell.pivot_table(index=["layer", "arm"], columns="metric", values="text",
                            aggfunc="first", sort=False)
    wide = wide[[m for m in TABLE_METRICS if m in wide.columns]].rename(columns=TABLE_METRICS)
    seeds = final.groupby("arm")["n_runs"].max()
    wide = wide.reset_index()
    wide.columns.name = None  # else the HTML table grows an empty "metric" header cell
    wide.insert(2, "seeds", wide["arm"].map(seeds))
    rank = {l: i for i, l in enumerate(layer_order)}
    arms = {a: i for i, a in enumerate(arm_order(wide["arm"]))}
    key = wide["layer"].map(rank).fillna(len(rank)) * 1000 + wide["arm"].map(arms)
    return wide.iloc[key.argsort(kind="stable")].reset_index(drop=True)


def accuracy_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per arm: final and best test accuracy and final test NLL, mean ± std over seeds."""
    last = metrics[metrics["epoch"] == metrics.groupby("run")["epoch"].transform("max")]
    best = metrics.groupby(["arm", "run"])["test_accuracy"].max().reset_index()
    rows = []
    for arm in arm_order(last["arm"]):
        a, b = last[last["arm"] == arm], best[best["arm"] == arm]
        n = len(a)
        rows.append({"arm": arm, "strategy": a["strategy"].iloc[0], "seeds": n,
                     "epochs": int(a["epoch"].max()),
                     "test accuracy (final)": mean_std(a["test_accuracy"].mean(), a["test_accuracy"].std(), n),
                     "test accuracy (best)": mean_std(b["test_accuracy"].mean(), b["test_accuracy"].std(), n),
                     "test NLL (final)": mean_std(a["test_nll"].mean(), a["test_nll"].std(), n)})
    return pd.DataFrame(rows)
