"""The report: one document, written as Markdown (for code hosts) and HTML (for browsers).

A report is a list of blocks (heading, paragraph, table, image); each renderer turns
the same blocks into its format, so the two files always say the same thing.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Image:
    path: str  # relative to the report
    caption: str


Block = Heading | Paragraph | Table | Image


def render_markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Paragraph):
            out.append(b.text)
        elif isinstance(b, Table):
            cols = list(b.frame.columns)
            rows = [" | ".join(map(str, cols)), " | ".join("---" for _ in cols)]
            rows += [" | ".join(str(v) for v in r) for r in b.frame.itertuples(index=False)]
            out.append("\n".join(f"| {r} |" for r in rows))
        elif isinstance(b, Image):
            out.append(f"![{b.caption}]({b.path})\n\n*{b.caption}*")
    return "\n\n".join(out) + "\n"


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,td:nth-child(2),th{text-align:left}img{max-width:100%}figcaption{color:#555;
font-style:italic}code{background:#f3f3f3;padding:0 .2em}"""


def render_html(blocks: list[Block], title: str) -> str:
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            out.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            out.append(b.frame.to_html(index=False, escape=True, border=0))
        elif isinstance(b, Image):
            out.append(f"<figure><img src='{html.escape(b.path)}' alt='{html.escape(b.caption)}'>"
                       f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    return "\n".join(out) + "</body></html>\n"


def write_report(out_dir: Path, blocks: list[Block], title: str) -> list[Path]:
    md, page = out_dir / "report.md", out_dir / "report.html"
    write_text(md, render_markdown([Heading(title, 1), *blocks]))
    write_text(page, render_html([Heading(title, 1), *blocks], title))
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
