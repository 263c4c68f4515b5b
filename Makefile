# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: run test setup bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Installs torch first (the CPU build by default) so that the project's open `torch>=2.2`
# requirement is already satisfied and pip does not pull a CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev,dask,images]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sims run xor-cluster --preset default

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/ensemble.py
	$(PY) benchmarks/lc.py
	$(PY) benchmarks/max_margin.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
