"""Names from files someone else wrote never become markup nor crash a figure (issue 10).

The renderers get every block type with hostile text and must give it back as text: the
HTML page (Jinja2, autoescaped) parsed tag by tag, the Markdown unescaped back to the
name. The figures get names with `$` and must show them literally. The embeddings get
layers with nothing to embed and must leave them out, saying which and why.
"""
from __future__ import annotations

import dataclasses
import html
import io
import re
import subprocess
import sys
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from repflat.analysis.embeddings import COLUMNS, embed, embed_runs, embedding_problem
from repflat.analysis.report.plotting.embeddings import plot_embeddings
from repflat.analysis.report.figures import epochs_figure, heatmap_figure, spectra_figure
from repflat.analysis.layers import analyze_features
from repflat.analysis.report.markup import (Code, Details, Heading, Ids, Image, Items, Paragraph, Table, md_block,
                             md_text, one_line, render_html, render_markdown)
from repflat.analysis.runs import collect_runs
from repflat.analysis.report.plotting.style import literal
from repflat.analysis.report.toy import boundaries, figure1, planes
from repflat.cli import main
from repflat.config import AnalysisConfig
from repflat.errors import UserError
from repflat.rundir.run import read_run
from repflat.rundir.features import FeatureWriter

HOSTILE = ['x"><script>alert(1)</script>', "<img src=x onerror=alert(1)>",
           "' onmouseover='alert(1)", "&lt;b&gt; & &amp;", "{{ 7*7 }} {% raw %}",
           "*a* _b_ `c` [d](e) | #f ~g~ $h$ \\i", "- item", "1. first"]
TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "nav", "ul", "li",
        "a", "p", "div", "table", "thead", "tbody", "tr", "th", "td", "figure", "img",
        "figcaption", "pre", "code", "details", "summary"}
ATTRIBUTES = {"lang", "charset", "name", "content", "id", "class", "href", "src", "alt"}
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")


class Page(HTMLParser):
    """Every tag, attribute, text run and table cell of a page, entities decoded."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.text, self.tables = [], [], [], {}
        self._cell = self._rows = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, k, v) for k, v in attrs]
        if tag == "table":
            self._rows = self.tables.setdefault(dict(attrs).get("id"), [])
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def hostile_blocks(tmp_path=None) -> list:
    frame = pd.DataFrame({h: [h, f"{h} 2"] for h in HOSTILE[:4]})
    return [Heading(h) for h in HOSTILE] + [Paragraph(h) for h in HOSTILE] + [
        Table(frame, name=HOSTILE[0]), Table(frame, name=HOSTILE[0]), Table(frame, name="flattening"),
        Image("figure.png", HOSTILE[1]), Code(HOSTILE[0] + "\n```\n" + HOSTILE[4]),
        Details(HOSTILE[2], [Paragraph(HOSTILE[3]), Table(frame, name=HOSTILE[1])]),
        Items(list(HOSTILE), name=HOSTILE[2])]


# ---------------------------------------------------------------- HTML

@pytest.mark.parametrize("embed", [False, True])
def test_the_page_has_only_its_own_markup_and_every_name_as_text(tmp_path, embed):
    (tmp_path / "figure.png").write_bytes(PNG)
    page = render_html(hostile_blocks(), HOSTILE[0], embed_from=tmp_path if embed else None)
    parsed = Page(page)
    assert set(parsed.tags) <= TAGS and "script" not in parsed.tags
    assert {k for _, k, _ in parsed.attributes} <= ATTRIBUTES
    text = "".join(parsed.text)
    for h in HOSTILE:
        assert h in text, h
    assert "49" not in text  # {{ 7*7 }} is text, not a template
    ids = [v for _, k, v in parsed.attributes if k == "id"]
    assert all(re.fullmatch(r"[a-z0-9-]+", i) for i in ids) and len(set(ids)) == len(ids)
    hrefs = [v for t, k, v in parsed.attributes if k == "href"]
    assert hrefs and all(h[1:] in ids for h in hrefs)  # the nav points at the headings
    srcs = [v for _, k, v in parsed.attributes if k == "src"]
    assert len(srcs) == 1 and (srcs[0].startswith("data:image/png;base64,iVBORw0KGgo") if embed
                               else srcs[0] == "figure.png")
    assert [v for _, k, v in parsed.attributes if k == "alt"] == [HOSTILE[1]]
    assert html.unescape(re.search(r"<title>(.*)</title>", page)[1]) == HOSTILE[0]


def test_tables_are_written_cell_by_cell_with_safe_unique_ids():
    frame = pd.DataFrame({"layer": ["<b>", "fc1"], "σ₁": ["1 ± 0.1", np.nan], "seeds": [2, 3]})
    parsed = Page(render_html([Table(frame, name="theory-<b>"), Table(frame, name="theory-<b>"),
                               Table(frame, name="flattening"), Table(frame)], "t"))
    assert list(parsed.tables) == ["table-theory-b", "table-theory-b-2", "table-flattening", None]
    assert parsed.tables["table-flattening"] == [["layer", "σ₁", "seeds"], ["<b>", "1 ± 0.1", "2"],
                                                 ["fc1", "—", "3"]]


def test_ids_keep_a_z_digits_and_dashes_and_never_repeat():
    ids = Ids()
    taken = [ids.take(t) for t in ("Flattening", "Flattening", "", "<>", "É σ x" * 40, "Flattening")]
    assert taken[:4] == ["flattening", "flattening-2", "section", "section-2"]
    assert taken[5] == "flattening-3" and len(taken[4]) <= 60
    assert ids.take("flattening", "table-") == "table-flattening"


def test_the_nav_lists_sections_only_past_three():
    few = render_html([Heading(f"s{i}") for i in range(3)], "t")
    many = Page(render_html([Heading(f"s{i}") for i in range(4)] + [Heading("deep", 3)], "t"))
    assert "<nav>" not in few
    assert [v for _, k, v in many.attributes if k == "href"] == ["#s0", "#s1", "#s2", "#s3"]


def test_a_hostile_page_runs_no_script_in_headless_chromium(tmp_path):
    from tests.browser import chromium_page

    (tmp_path / "figure.png").write_bytes(PNG)
    page = tmp_path / "report.html"
    page.write_text(render_html(hostile_blocks(), HOSTILE[0], embed_from=tmp_path))
    with chromium_page(tmp_path / "profile") as chrome:
        chrome.get(page.as_uri())
        found = chrome.execute_script(
            "return [document.scripts.length, document.title,"
            " Array.from(document.querySelectorAll('*')).flatMap(e => e.getAttributeNames())"
            "   .filter(n => n.startsWith('on')).length,"
            " Array.from(document.querySelectorAll('h2')).map(h => h.textContent)]")
        assert found[:3] == [0, HOSTILE[0], 0]
        assert found[3] == HOSTILE


# ---------------------------------------------------------------- Markdown

def unescape_md(text: str) -> str:
    """What a Markdown renderer shows of `md_text`'s output: backslash escapes, then entities."""
    return html.unescape(re.sub(r"\\(.)", r"\1", text))


def bare(text: str) -> str:
    """`text` without its escapes: what is left must hold no Markdown or HTML special."""
    return re.sub(r"&(amp|lt|gt);", "", re.sub(r"\\.", "", text))


@settings(max_examples=300, derandomize=True)
@given(st.text(max_size=60))
def test_markdown_text_shows_exactly_the_name_and_nothing_else(text):
    for out in (md_text(text), md_block(text)):
        assert "\n" not in out and unescape_md(out) == one_line(text)
        assert not re.search(r"[\\`*_\[\]|#~$<>&]", bare(out)), out
    assert not re.match(r"[-+]|\d{1,9}[.)](\s|$)", md_block(text))


def test_markdown_text_stays_readable():
    assert md_text("erm fc1 0.5 ± 0.1 (seed 0): dim(H) − K + 1") == "erm fc1 0.5 ± 0.1 (seed 0): dim(H) − K + 1"
    assert md_text("sum_other_singular_values") == r"sum\_other\_singular\_values"
    assert md_text(HOSTILE[1]) == "&lt;img src=x onerror=alert(1)&gt;"
    assert md_block("- item") == r"\- item" and md_block("1. first") == r"1\. first"
    assert md_block("1.65 ± 0.3") == "1.65 ± 0.3" and md_block("---") == r"\---"
    assert md_text("a\n\n# b") == r"a \# b"


def test_markdown_blocks_carry_no_markup():
    md = render_markdown(hostile_blocks())
    code = f"````\n{HOSTILE[0]}\n```\n{HOSTILE[4]}\n````"  # a fenced block shows its text as is
    assert md.count(code) == 1
    outside = md.replace(code, "")
    assert "<script" not in outside and "<img" not in outside
    assert re.findall(r"^#+ ", md, re.M) == ["## "] * len(HOSTILE)
    table = [line for line in md.splitlines() if line.startswith("| ")][:4]
    assert [bare(line).count("|") for line in table] == [5] * 4  # 4 columns, no extra cells
    assert md.count("````") == 2  # the fence outgrows the ``` inside
    assert "<details><summary>&#x27; onmouseover=&#x27;alert(1)</summary>" in md
    assert f"*{md_text(HOSTILE[1])}*" in md


# ---------------------------------------------------------------- figures

ARM, LAYER, CLASS = "a$x$b", "l$\\frac$", "c$"


def test_the_names_would_crash_matplotlib_unescaped():
    fig = plt.figure()
    fig.suptitle(LAYER)
    with pytest.raises(ValueError):
        fig.savefig(io.BytesIO())
    plt.close(fig)


def shown(text) -> str:
    """What matplotlib draws for a Text: its string after mathtext handling."""
    s, is_math = text._preprocess_math(text.get_text())
    assert not is_math, text.get_text()
    return s


def summary_frame() -> pd.DataFrame:
    rows = [{"run": f"{arm}-{e}", "arm": arm, "strategy": "none", "layer": layer, "epoch": e,
             "metric": m, "mean": v * (1 + e), "std": 0.1, "n_runs": 2}
            for arm, v in ((ARM, 1.0), ("erm", 2.0)) for layer in (LAYER, "fc1")
            for e in (1, 2) for m in ("sum_other_singular_values", "pooled_sum_other_singular_values")]
    return pd.DataFrame(rows)


def test_names_in_heat_maps_and_epoch_figures_are_drawn_literally():
    assert literal(ARM) == r"a\$x\$b"
    summary = summary_frame()
    fig = heatmap_figure(summary, "sum_other_singular_values")
    ax = fig.axes[0]
    assert [shown(t) for t in ax.get_yticklabels()] == ["erm", ARM]
    assert [shown(t) for t in ax.get_xticklabels()] == [LAYER, "fc1"]
    assert shown(fig.axes[-1].yaxis.label) == "relative to erm"
    fig.savefig(io.BytesIO())
    fig = epochs_figure(summary[summary["metric"] == "sum_other_singular_values"])
    assert shown(fig.axes[0].title) == LAYER
    assert sorted(shown(t) for t in fig.legends[0].get_texts()) == sorted(["erm", ARM])
    fig.savefig(io.BytesIO())
    plt.close("all")


def test_names_in_spectra_keep_mathtext_for_log_ticks():
    spectra = pd.DataFrame([{"run": "r", "arm": ARM, "strategy": "none", "seed": 0, "split": "train",
                             "layer": LAYER, "epoch": 1, "group": g, "class": k, "class_name": c,
                             "index": i, "singular_value": v}
                            for g, k, c in (("class", 0, CLASS), ("pooled", None, None))
                            for i, v in enumerate((3.0, 1.0, 0.1))]).astype({"class": "Int64"})
    fig = spectra_figure(spectra)
    assert [shown(a.title) for a in fig.axes] == [f"{LAYER}: class {CLASS}", f"{LAYER}: mean over classes",
                                                  f"{LAYER}: all classes pooled (control)"]
    assert [shown(t) for t in fig.legends[0].get_texts()] == [ARM]
    fig.canvas.draw()
    assert any(t.get_text().startswith("$") for t in fig.axes[0].get_yticklabels())  # 10^k ticks
    fig.savefig(io.BytesIO())
    plt.close(fig)


def test_names_in_toy_figures_are_drawn_literally(trained_runs):
    runs, _, _ = collect_runs([trained_runs["none", 0], trained_runs["manifold_mixup", 0]])
    runs = [dataclasses.replace(r, name=f"{ARM}{i}") for i, r in enumerate(runs)]
    spectra, _ = analyze_features(runs, AnalysisConfig(layers=("fc1", "fc2")))
    spectra["layer"] = spectra["layer"].replace({"fc1": LAYER})
    fig = figure1(runs, spectra, layers=(LAYER, "fc2"))
    assert shown(fig.axes[2].title) == f"(c) class 0 spectrum at {LAYER}"
    fig.savefig(io.BytesIO())
    fig = planes(runs)
    assert [shown(a.title) for a in fig.axes] == [f"{ARM}0 (seed 0)", f"{ARM}1 (seed 0)"]
    fig.savefig(io.BytesIO())
    fig = boundaries(runs)
    assert shown(fig.axes[0].yaxis.label) == f"{ARM}0 (seed 0)"
    fig.savefig(io.BytesIO())
    plt.close("all")


# ---------------------------------------------------------------- embeddings

def bare_run(root, name: str, x, seed=0):
    w = FeatureWriter(root / name)
    w.add_labels("train", np.arange(len(x)) % 2)
    w.add("train", 1, "h", np.asarray(x, np.float32))
    (root / name / "config.yaml").write_text(yaml.safe_dump({"name": name, "seed": seed}))
    return root / name


LIVE = np.random.default_rng(0).normal(size=(40, 6))
DEAD = np.zeros((40, 6))
SAME = np.tile(np.arange(6.0), (40, 1))


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
@pytest.mark.parametrize("x, why", [
    (DEAD, "no spread (all 40 rows identical, e.g. dead ReLUs)"),
    (SAME, "no spread (all 40 rows identical)"),
    (np.where(np.eye(40, 6) > 0, np.nan, LIVE), "6 non-finite values (NaN or Inf)"),
    (LIVE[:3], "only 3 rows"),
])
def test_embed_refuses_what_it_cannot_embed(x, why, method):
    assert embedding_problem(x).startswith(why)
    with pytest.raises(UserError, match=r"^features: expected .*" + re.escape(why[:20])):
        embed(x, method=method)  # refused before umap is even imported


def test_embeddings_leave_out_the_arms_with_nothing_to_embed(tmp_path):
    runs = [read_run(bare_run(tmp_path, n, x)) for n, x in (("erm", LIVE), ("dead", DEAD), ("same", SAME))]
    found = embed_runs(runs, layer="h", methods=("pca", "tsne"))
    assert found.arms == ["erm"] and set(found.data["arm"]) == {"erm"}
    assert found.notes == [
        "h of dead (seed 0) has no spread (all 40 rows identical, e.g. dead ReLUs): nothing to embed.",
        "h of same (seed 0) has no spread (all 40 rows identical): nothing to embed."]
    assert "skipped=['dead', 'same']" in repr(found)
    fig = plot_embeddings(found.data)
    assert [a.get_title() for a in fig.axes[:1]] == ["erm (seed 0)"] and len(fig.axes) == 2
    plt.close(fig)
    none = embed_runs(runs[1:], layer="h")
    assert none.data.empty and list(none.data.columns) == COLUMNS and len(none.notes) == 2


def test_the_report_says_which_arm_was_not_embedded(tmp_path):
    runs = [str(bare_run(tmp_path, n, x)) for n, x in (("erm", LIVE), ("dead", DEAD))]
    assert main(["analyze", *runs, "--out", str(tmp_path / "an"), "--quiet"]) == 0
    md = (tmp_path / "an/report.md").read_text()
    section = md.split("## Embeddings\n\n", 1)[1].split("\n\n## ", 1)[0]
    assert section.startswith("h of dead (seed 0) has no spread (all 40 rows identical, e.g. "
                              "dead ReLUs): nothing to embed.\n\n![")
    assert (tmp_path / "an/embeddings.png").is_file()
    page = (tmp_path / "an/report.html").read_text()
    assert "<p>h of dead (seed 0) has no spread" in page


def test_tsne_ignores_scale_even_where_float32_distances_cannot_hold_it():
    # A child: before the guard these spreads killed the process (SIGSEGV in Barnes-Hut).
    code = ("import numpy as np; from repflat.analysis.embeddings import embed;"
            "x = np.random.default_rng(0).normal(size=(60, 5));"
            "ref = embed(x, method='tsne');"
            "[np.testing.assert_array_equal(embed(np.ldexp(x, k), method='tsne'), ref)"
            " for k in (-90, 140)]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
