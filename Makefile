# The two quick-start commands. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= results/spirals

.PHONY: demo test test-analysis-only install benchmark results-text docs clean

$(BIN)/repflat: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/repflat

demo: install  ## the spirals reproduction (Figure 1 + flattening table), no downloads
	$(BIN)/repflat run experiments/spirals.yaml --out $(OUT) --jobs auto

test: install  ## the test suite, one worker per CPU (pytest-xdist; a test file stays in one worker)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# The analysis side in a venv without torch (docs/own-model.md, "Without torch"): its tests must pass there.
NT := .venv-analysis
ANALYSIS_TESTS := tests/test_spectra.py tests/test_metrics.py tests/test_streaming.py \
	tests/test_theory.py tests/test_fuzz.py tests/test_markup_safety.py tests/test_layers.py \
	tests/test_library_numpy.py
test-analysis-only:
	$(PYTHON) -m venv $(NT)
	$(NT)/bin/pip install --quiet --upgrade pip
	$(NT)/bin/pip install --quiet -r requirements-analysis.txt pytest hypothesis
	$(NT)/bin/pip install --quiet --no-deps -e .
	$(NT)/bin/python -c "import importlib.util as u; assert u.find_spec('torch') is None, 'torch is installed here'"
	$(NT)/bin/python -m pytest -q $(ANALYSIS_TESTS)

benchmark: install  ## the speed benchmarks (see benchmarks/)
	$(BIN)/python benchmarks/experiment_e2e.py
	$(BIN)/python benchmarks/sweep_throughput.py
	$(BIN)/python benchmarks/cli_latency.py
	$(BIN)/python benchmarks/mixing_step.py
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/spectra_speed.py
	$(BIN)/python benchmarks/design_choices.py
	$(BIN)/python benchmarks/import_costs.py
	$(BIN)/python benchmarks/write_costs.py
	$(BIN)/python benchmarks/counters.py

# The documentation site into site/ (open site/index.html; `$(BIN)/mkdocs serve` while
# editing), strict: a broken link, anchor or docstring, or a tutorial notebook that fails
# to run, fails it. The tutorials train small runs under build/tutorials/, anew each time.
$(BIN)/mkdocs: $(BIN)/repflat pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,docs]'
	touch $@

docs: $(BIN)/mkdocs
	rm -rf build/tutorials
	NO_MKDOCS_2_WARNING=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg $(BIN)/mkdocs build --strict

# The text of each results/<experiment>/analysis/report.md, from its top through its
# Training table (the docs' numbers come from these), into docs/results/<experiment>.md.
results-text:
	@mkdir -p docs/results
	@for r in results/*/analysis/report.md; do \
	  n=$$(basename $$(dirname $$(dirname $$r))); \
	  awk '/^## Training/{t=1} t && /^## / && !/^## Training/{exit} {print}' $$r > docs/results/$$n.md; \
	  echo "docs/results/$$n.md"; \
	done

clean:
	rm -rf $(VENV) $(NT) results site build/docs-api build/tutorials
