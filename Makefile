# Fresh machine: `make demo` or `make test` creates .venv, installs szmass, then runs.
PYTHON ?= python3
VENV   ?= .venv
EXTRAS ?= cpu,slurm,test
CORES  ?= 2
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test report clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml

test: $(STAMP)
	$(BIN)/python -m pytest tests

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml --report results/report.html

clean:
	rm -rf results resources .snakemake
