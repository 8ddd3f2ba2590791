"""The report as a reader meets it (issue 21), in headless Chromium at 1280 px: a sweep of
one's own (moons; ERM, input mixup, manifold mixup at two α; three seeds), its page read
from the DOM, not from pixels.

Each test pins one defect a reader met: no verdict on the first screen, noise stated as
fact, a caveat naming eleven paper experiments the sweep does not match, a Corollary 1
table wider than the page, a mixing summary that cannot show α, ± printed for some arms
and not for others."""
import re

import pytest
import yaml

from repflat.analysis.report.tables import beta_std
from repflat.cli import main
from tests.browser import chromium_page

MOONS = {
    "name": "my_moons",
    "description": "A user's own sweep.",
    "seeds": [0, 1, 2],
    "base": {
        "data": {"name": "moons", "n_per_class": 60, "noise": 0.1, "test_fraction": 0.5, "seed": 0},
        "model": {"name": "mlp", "widths": [12], "bottleneck": 2, "widths_after": [12]},
        "train": {"epochs": 12, "batch_size": 20, "optimizer": "adam", "lr": 0.01},
        "evaluation": {"premise_layers": ["bottleneck"], "premise_alpha": 2.0},
        "capture": {"layers": ["fc1", "bottleneck", "fc2"], "splits": ["train"]},
    },
    "arms": {
        "erm": {"mixing": {"strategy": "none"}},
        "input_mixup": {"mixing": {"strategy": "input_mixup", "alpha": 1.0}},
        "manifold_mixup": {"mixing": {"strategy": "manifold_mixup", "layers": ["fc1", "bottleneck"]}},
    },
    "grid": [{"arms": ["manifold_mixup"], "params": {"mixing.alpha": [0.5, 8]}}],
    "analysis": {"split": "train", "layers": ["fc1", "bottleneck", "fc2"]},
}
LAYERS = ("fc1", "bottleneck", "fc2")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The moons sweep's report.html, open in headless Chromium (1280 × 900)."""
    with chromium_page(tmp_path_factory.mktemp("browser")) as browser:
        root = tmp_path_factory.mktemp("moons")
        (root / "moons.yaml").write_text(yaml.safe_dump(MOONS))
        assert main(["run", str(root / "moons.yaml"), "--out", str(root / "out"), "--quiet",
                     "--figures", "none"]) == 0
        browser.get((root / "out/analysis/report.html").as_uri())
        yield browser


def rows(browser, table_id: str) -> tuple[list[str], list[list[str]]]:
    table = browser.find_element("id", table_id)
    header = [c.text for c in table.find_elements("css selector", "thead th")]
    body = [[c.text for c in r.find_elements("css selector", "td")]
            for r in table.find_elements("css selector", "tbody tr")]
    return header, body


def test_the_first_screen_holds_a_verdict_per_layer(page):
    fold = page.execute_script("return window.innerHeight")
    heading = page.find_element("id", "verdict")
    items = page.find_elements("css selector", "#list-verdict li")
    assert heading.rect["y"] < fold and items and items[0].rect["y"] + items[0].rect["height"] < fold
    assert [i.text.split(",")[0] for i in items] == [f"Layer {layer}" for layer in LAYERS]
    for item in items:  # each quotable alone: baseline, seeds, an interval per arm, the premise
        text = item.text
        assert "against erm" in text and "3 seeds each" in text, text
        assert "input_mixup (Δ along" in text and "manifold_mixup-alpha0.5 (Δ along" in text, text
        assert re.search(r"Δ along [+-][\d.]+(e-\d+)? \[[+-]?[\d.]+(e-\d+)?, [+-]?[\d.]+(e-\d+)?\]", text), text
        assert "minimiser of its mixup loss" in text, text


def test_differences_inside_the_noise_are_said_to_be_noise(page):
    """Each sentence on the paper's statistic carries its interval; one that includes 0 is
    called inside the noise, and none states the baseline's lead as a fact."""
    text = page.find_element("tag name", "body").text
    assert "no arm flattens" not in text
    said = [s for s in text.split("\n") if s.startswith("At ") and "Σ σ₂… is smallest" in s]
    assert len(said) == len(LAYERS)
    for sentence in said:
        low, high = map(float, re.search(r"95% CI (-?[\d.]+) to (-?[\d.]+)", sentence).groups())
        assert (low <= 0 <= high) == ("inside the noise" in sentence.split(";")[0]), sentence


def test_a_users_experiment_carries_no_paper_caveat(page):
    text = page.find_element("tag name", "body").text
    assert "The paper reports no numbers" not in text and "cifar100_preactresnet18" not in text
    assert not page.find_elements("id", "the-paper-s-numbers")


def test_the_corollary_tables_fit_the_page_whatever_the_number_of_arms(page):
    header, body = rows(page, "table-theory-bottleneck")
    assert header[:2] == ["class", "arm"] and len(header) <= 6  # long format: one row per arm
    arms = ["erm", "input_mixup", "manifold_mixup-alpha0.5", "manifold_mixup-alpha8"]
    assert [r[1] for r in body] == arms * 3  # classes 0, 1 and their mean
    for table_id in ("table-corollary", "table-theory-bottleneck"):
        wrapper = page.find_element("id", table_id).find_element("xpath", "..")
        scroll, client = (page.execute_script(f"return arguments[0].{p}", wrapper)
                          for p in ("scrollWidth", "clientWidth"))
        assert scroll <= client, (table_id, scroll, client)


def test_the_mixing_summary_shows_that_alpha_was_applied(page):
    """λ's mean is ½ for every α; its spread is √(1/(4(2α+1))): 0.35 at α 0.5, 0.12 at 8."""
    header, body = rows(page, "table-mixing")
    at = {h: i for i, h in enumerate(header)}
    drawn = {}
    for row in body:
        alpha, spread = float(row[at["α"]]), float(row[at["λ std, drawn"]])
        assert float(row[at["λ std of Beta(α, α)"]]) == pytest.approx(beta_std(alpha), abs=5e-4)
        assert spread == pytest.approx(beta_std(alpha), rel=0.25), row
        drawn[row[0]] = spread
    assert drawn["manifold_mixup-alpha0.5"] > 2 * drawn["manifold_mixup-alpha8"]


def test_every_value_over_seeds_prints_its_spread(page):
    """'1' for an arm whose seeds all reached 1.0 beside '0.9960 ± 0.0020' read as one run
    against several: a value over seeds carries its spread, 0 included."""
    import pandas as pd

    from repflat.analysis.report.tables import accuracy_table

    metrics = pd.DataFrame({"arm": ["erm"] * 3 + ["mm"] * 3, "strategy": ["none"] * 3 + ["mm"] * 3,
                            "run": ["e0", "e1", "e2", "m0", "m1", "m2"], "epoch": 5,
                            "test_accuracy": [1.0, 1.0, 1.0, 0.994, 0.996, 0.998],
                            "test_nll": [0.01, 0.01, 0.01, 0.02, 0.03, 0.04]})
    table = accuracy_table(metrics).set_index("arm")
    assert table.loc["erm", "test accuracy (best)"] == "1 ± 0"
    assert table.loc["mm", "test accuracy (best)"] == "0.9960 ± 0.0020"
    header, body = rows(page, "table-training")
    at = {h: i for i, h in enumerate(header)}
    for row in body:
        for column in ("test accuracy (final)", "test accuracy (best)", "test NLL (final)"):
            assert " ± " in row[at[column]], (column, row)
