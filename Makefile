# betenet: two commands on a fresh machine (see README):
#   make book     set up .venv (+ Quantum ESPRESSO), execute all notebooks (PROFILE=default), build the book
#   make test     set up .venv (+ Quantum ESPRESSO), run the test suite (CI: not slow)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= default
# DATA=ours: this project's QE records; DATA=upstream: the authors' database.json (data/upstream/database.json),
# the paper's split and bootstrap resamples, artifacts in artifacts/upstream/<profile>
DATA ?= ours
PY := $(VENV)/bin/python
STAMP := $(VENV)/.betenet-installed
PYTEST_ARGS ?= -m "not slow"
# make dataset: how many unfinished candidates to compute (-1 = all), Dask workers, OpenMP threads and MPI
# ranks (k-point pools) of each QE process: cores used = WORKERS x OMP x MPI
LIMIT ?= 10
WORKERS ?= 2
OMP ?= 1
MPI ?= 1
# ... at which QE accuracy level (validated: data/qe-validated, data/records-validated) and from which
# candidates (prototypes, or upstream: the paper's own structures); IDS="A B" computes these, in order
ACCURACY ?= validated
CANDIDATES ?= prototypes
IDS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Bytecode caches: some machines export PYTHONDONTWRITEBYTECODE=1, which makes every notebook kernel
# and Dask worker re-compile torch/scipy/e3nn on import (~20 s each); the venv is byte-compiled once
# at install time and our own runs may write caches.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup lock qe-deps book notebooks dataset test test-all bench clean-book help

help:
	@echo "make book      # setup + run all notebooks (PROFILE=$(PROFILE)) + jupyter-book build"
	@echo "make test      # setup + pytest ($(PYTEST_ARGS))"
	@echo "make test-all  # setup + every test, slow ones included"
	@echo "make dataset   # grow the QE dataset in data/ (resumable; ACCURACY=$(ACCURACY), LIMIT=$(LIMIT) materials, WORKERS=$(WORKERS), IDS=...)"
	@echo "make bench     # performance benchmarks (benchmarks/)"

# Python environment.  torch==2.13.0 is installed in the same command as everything else so
# that no resolver can pick another (CUDA) torch.  uv is used when a local wheel directory
# (PIP_FIND_LINKS) is configured, plain pip otherwise.
# constraints.txt pins every other package to the versions the tests last passed with (`make lock` rewrites it):
# an unpinned fresh install once took a SciPy build whose E(V) fits differed from the committed ones.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ -n "$$PIP_FIND_LINKS" ] && $(VENV)/bin/pip install -q uv 2>/dev/null; then \
	  $(VENV)/bin/uv pip install --python $(PY) --find-links "$$PIP_FIND_LINKS" -c constraints.txt torch==2.13.0 -e ".[test,cluster]"; \
	else \
	  $(VENV)/bin/pip install -c constraints.txt torch==2.13.0 -e ".[test,cluster]"; \
	fi
	@$(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	@touch $@

setup: $(STAMP) qe-deps

# Rewrite constraints.txt from the environment (after upgrading a package and running the tests).
lock: $(STAMP)
	@{ head -2 constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v -i -E '^(torch|uv)=='; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt && echo "constraints.txt: $$(grep -c '==' constraints.txt) packages"

# Quantum ESPRESSO (Debian/Ubuntu: pw.x ph.x q2r.x matdyn.x projwfc.x dos.x ld1.x + example pseudopotentials).
qe-deps:
	@if command -v pw.x >/dev/null && command -v ld1.x >/dev/null && [ -d /usr/share/espresso/pseudo ]; then \
	  echo "Quantum ESPRESSO: $$(command -v pw.x)"; \
	elif command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq quantum-espresso quantum-espresso-data; \
	else \
	  echo "Quantum ESPRESSO not found and no apt-get: install QE >= 6.7 (conda: conda install -c conda-forge qe)"; exit 1; \
	fi
	@# OpenBLAS for Debian's QE (it links libblas.so.3, the reference BLAS by default): ph.x 1.5x faster at B2 AgCd's Γ point (data/README).
	@# Single-threaded build: the dataset runs one OpenMP thread per QE process.  Optional.
	@if command -v dpkg >/dev/null && command -v apt-get >/dev/null && ! dpkg -s libopenblas0-serial >/dev/null 2>&1; then \
	  (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libopenblas0-serial \
	    || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libopenblas0-serial)) \
	    || echo "warning: libopenblas0-serial not installed; QE runs with the reference BLAS (slower, same results)"; \
	fi
	@# Elk (all-electron FP-LAPW, Debian elk-lapw): the all-electron PBEsol E(V) that the PseudoDojo set's E(V) is judged
	@# against (betenet pseudo dojo allelectron; betenet.qe.pseudo.allelectron).  Its tests need it.
	@if ! command -v elk-lapw >/dev/null && ! command -v elk >/dev/null && command -v apt-get >/dev/null; then \
	  (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq elk-lapw \
	    || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq elk-lapw)) \
	    || { echo "elk-lapw not installed: install Elk (https://elk.sourceforge.io) and set ELK_BINARY"; exit 1; }; \
	fi
	@# mpirun for QEConfig.mpi_procs > 1 (qe run --mpi N: k-point pools); Debian's QE links Open MPI but does not pull
	@# in its launcher.  Optional: without it, runs stay serial and the MPI test is skipped.
	@if ! command -v mpirun >/dev/null && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openmpi-bin \
	    || echo "warning: openmpi-bin not installed; QE runs serially (QEConfig.mpi_procs = 1)"; \
	fi

notebooks: setup
	$(VENV)/bin/betenet notebooks run --profile $(PROFILE) --data $(DATA)

book: setup
	$(VENV)/bin/betenet notebooks run --profile $(PROFILE) --data $(DATA) --build-book

# Grow the project's QE dataset at ACCURACY in priority order (or IDS); resumes unfinished materials.
dataset: setup
	$(VENV)/bin/betenet qe run --profile $(PROFILE) --accuracy $(ACCURACY) --candidates $(CANDIDATES) --limit $(LIMIT) \
	  --workers $(WORKERS) --omp $(OMP) --mpi $(MPI) $(if $(IDS),--ids $(IDS)) --log artifacts/qe-$(ACCURACY).jsonl

test: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/pytest $(PYTEST_ARGS)

test-all: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/pytest

bench: setup
	$(PY) benchmarks/run_benchmarks.py

clean-book:
	rm -rf book/_build   # book/chapters is committed (the default run's); `make book` replaces it
