# The two quick-start commands. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= results/spirals

.PHONY: demo test install benchmark clean

$(BIN)/repflat: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/repflat

demo: install  ## the spirals reproduction (Figure 1 + flattening table), no downloads
	$(BIN)/repflat run experiments/spirals.yaml --out $(OUT) --jobs auto

test: install  ## the test suite
	$(BIN)/python -m pytest -q

benchmark: install  ## the speed benchmarks (see benchmarks/)
	$(BIN)/python benchmarks/experiment_e2e.py
	$(BIN)/python benchmarks/mixing_step.py
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/spectra_speed.py

clean:
	rm -rf $(VENV) results
