# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# Where torch comes from: empty = pip's configured index. On Linux the public index gives the CUDA build; for
# the CPU-only build use `make run TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
TORCH_INDEX ?=
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: run test setup bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Installs torch first (TORCH_SPEC from TORCH_INDEX) so that the project's open `torch>=2.2` requirement is
# already satisfied and pip keeps that build; then the package with every extra.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install --quiet -e ".[all]"
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
