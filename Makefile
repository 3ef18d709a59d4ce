# Fresh machine: `make demo` or `make test` creates .venv, installs szmass, then runs.
# The install applies constraints.txt: the exact versions szmass is tested with.
PYTHON      ?= python3
VENV        ?= .venv
EXTRAS      ?= cpu,slurm,test
CONSTRAINTS ?= constraints.txt
CORES       ?= 2
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed

.PHONY: install demo test report clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) --upgrade pip

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml

test: $(STAMP)
	$(BIN)/python -m pytest tests

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml --report results/report.html

clean:
	rm -rf results resources logs benchmarks/out .snakemake
