# The two commands a learner needs: `make lab-01` and `make test`. Everything else installs itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
LAB    := $(VENV)/bin/lab
STAMP  := $(VENV)/.installed

.PHONY: install test lint up down status lab-01 lab-02 lab-03 lab-04 lab-05 capstone solve-01 bench bench-startup bench-serving bench-detect bench-monitor bench-drills bench-canary bench-grader clean

install: $(STAMP)

# Re-installs only when pyproject.toml changes; otherwise `make install` returns at once.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check lab_runtime drills grader tests labs
	$(VENV)/bin/ruff format --check lab_runtime drills grader tests labs
	$(VENV)/bin/mypy

up: install
	$(LAB) up

down:
	@if [ -x $(LAB) ]; then $(LAB) down; fi

status: install
	$(LAB) status

# `make lab-01` .. `make lab-05`: start the sandbox, then the lab (`lab labs` lists them).
START_LAB = $(LAB) up && $(LAB) start $@

lab-01: install
	$(START_LAB)

lab-02: install
	$(START_LAB)

lab-03: install
	$(START_LAB)

lab-04: install
	$(START_LAB)

lab-05: install
	$(START_LAB)

# The capstone: blind drills in sequence within a time budget (grader/rubric.yaml); `lab capstone score` grades it.
capstone: install
	$(LAB) up && $(LAB) capstone start $(if $(SEED),--seed $(SEED))

solve-01: install
	$(LAB) solve lab-01

bench: bench-startup bench-serving bench-detect bench-monitor bench-drills bench-canary bench-grader

bench-startup: install
	$(PY) tests/bench/bench_startup.py

bench-serving: install
	$(PY) tests/bench/bench_serving.py

bench-detect: install
	$(PY) tests/bench/bench_detect.py

bench-monitor: install
	$(PY) tests/bench/bench_monitor.py

bench-drills: install
	$(PY) tests/bench/bench_drills.py

bench-canary: install
	$(PY) tests/bench/bench_canary.py

bench-grader: install
	$(PY) tests/bench/bench_grader.py

clean: down
	rm -rf .lab
