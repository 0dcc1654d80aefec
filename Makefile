# The two commands a learner needs: `make lab-01` and `make test`. Everything else installs itself.
PYTHON ?= python3
# A learner's server on the class hub sets VENV to its image's environment.
VENV   ?= .venv
PY     := $(VENV)/bin/python
LAB    := $(VENV)/bin/lab
STAMP  := $(VENV)/.installed
# The runtime `make lab-NN` and `make up` start: local (default) or compose (`make lab-01 RUNTIME=compose`).
RUNTIME ?=
RUNTIME_FLAG = $(if $(RUNTIME),--runtime $(RUNTIME))
# Whichever compose is installed: the v2 plugin, else Debian's docker-compose 1.29 (the CLI finds it the same way).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || (command -v docker-compose >/dev/null && echo docker-compose))

.PHONY: install test lint up up-compose base-image compose-images down status lab-01 lab-02 lab-03 lab-04 lab-05 lab-06 lab-07 lab-08 capstone solve-01 bench bench-startup bench-serving bench-detect bench-monitor bench-drills bench-canary bench-grader bench-grading bench-compose bench-outage bench-switch bench-shadow bench-eval bench-evidence bench-footprint bench-console bench-class clean

# The project's own bytecode, kept current (a few hundred ms when nothing changed): where PYTHONDONTWRITEBYTECODE is
# set, every `lab` command and local sandbox service would otherwise compile the modules it imports, each time.
install: $(STAMP)
	@$(PY) -m compileall -q -j 0 lab_runtime drills grader labs tests

# Re-installs only when pyproject.toml (or the environment's MLflow defaults) change; otherwise returns at once.
$(STAMP): pyproject.toml lab_runtime/__init__.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@$(PY) -c 'import lab_runtime, sysconfig; lab_runtime.write_site_defaults(sysconfig.get_paths()["purelib"])'
	@touch $(STAMP)

# Ralph, the Learning Record Store the xAPI tests send statements to, in a venv of its own: its FastAPI pin is older
# than the lab's. Only the tests need it.
LRS_VENV  := .venv-lrs
LRS_STAMP := $(LRS_VENV)/.installed
$(LRS_STAMP):
	@test -x $(LRS_VENV)/bin/python || $(PYTHON) -m venv $(LRS_VENV)
	$(LRS_VENV)/bin/pip install --quiet --disable-pip-version-check 'ralph-malph[backend-fs,lrs,cli]==5.1.0' 'requests>=2.31'
	@touch $(LRS_STAMP)

# On three workers (a test file per worker at a time, the longest kinds first, each drill of the catalog on its own:
# tests/conftest.py's scheduler), then the tests that need the machine to themselves (`serial`).
test: install $(LRS_STAMP)
	$(PY) -m pytest -n 3 --dist loadfile -m "not serial"
	$(PY) -m pytest -m serial

lint: install
	$(VENV)/bin/ruff check lab_runtime drills grader tests labs
	$(VENV)/bin/ruff format --check lab_runtime drills grader tests labs
	$(VENV)/bin/mypy
	@# the labs' scripts, one at a time (each lab has its own solution.py: one module name)
	for f in labs/*/*.py; do $(VENV)/bin/mypy "$$f" --no-error-summary || exit 1; done

up: install
	$(LAB) up $(RUNTIME_FLAG)

# The sandbox as a Compose stack; PROFILES="observability load scale" adds Prometheus+Grafana, Locust, PostgreSQL.
up-compose: install
	$(if $(COMPOSE),LAB_COMPOSE_COMMAND="$(COMPOSE)") $(LAB) up --runtime compose $(foreach p,$(PROFILES),--profile $(p))

# A Python 3.11 base image from Debian's packages, for machines that cannot pull python:3.11-slim.
base-image:
	bash compose/base-image/build.sh

# Lists the stack's images and their sizes (built by `make up-compose`, or by `$(COMPOSE) build`).
compose-images:
	@docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^lab-' || echo "no lab images yet: make up-compose"

down:
	@if [ -x $(LAB) ]; then $(LAB) down; fi

status: install
	$(LAB) status

# `make lab-01` .. `make lab-08`: start the sandbox, then the lab (`lab labs` lists them).
START_LAB = $(LAB) up $(RUNTIME_FLAG) && $(LAB) start $@

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

lab-06: install
	$(START_LAB)

lab-07: install
	$(START_LAB)

lab-08: install
	$(START_LAB)

# The capstone: blind drills in sequence within a time budget (grader/rubric.yaml); `lab capstone score` grades it.
capstone: install
	$(LAB) up && $(LAB) capstone start $(if $(SEED),--seed $(SEED))

solve-01: install
	$(LAB) solve lab-01

bench: bench-startup bench-serving bench-detect bench-monitor bench-drills bench-canary bench-grader bench-grading bench-outage bench-switch bench-shadow bench-eval bench-evidence bench-footprint bench-console

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

# kill -9 of the model service until service-down fires; `lab reset` after kill -9 of a drill runner.
bench-outage: install
	$(PY) tests/bench/bench_outage.py

bench-switch: install
	$(PY) tests/bench/bench_switch.py

# The champion's latency with a shadow off and on (the caller never waits for the shadow).
bench-shadow: install
	$(PY) tests/bench/bench_shadow.py

# `lab eval run` on the default test set, timed as a learner runs it.
bench-eval: install
	$(PY) tests/bench/bench_eval.py

# One sandbox's RSS and CPU in steady state (lab 02 running), lab up fresh and warm, the CLI's CPU per command;
# DENSITY=N adds sandboxes one by one up to N while each answers lab check within 2 s and a p99 within 100 ms.
bench-console: install
	$(PY) -m tests.bench.bench_console

# The class hub on this machine's Docker engine (not in `make bench`: it needs Docker): time to every learner ready,
# each server's memory and CPU with traffic flowing, the hub's and console's load, the largest class held.
bench-class: install
	$(PY) -m tests.bench.bench_class $(if $(SIZES),--sizes $(SIZES))

bench-footprint: install
	$(PY) -m tests.bench.bench_footprint $(if $(DENSITY),--density $(DENSITY))

bench-canary: install
	$(PY) tests/bench/bench_canary.py

bench-grader: install
	$(PY) tests/bench/bench_grader.py

# xAPI export and sending (to Ralph), the gradebook, the cohort report and `lab skills` for 1,000 learners' bundles.
bench-evidence: install $(LRS_STAMP)
	$(PY) tests/bench/bench_evidence.py

# Needs the machine to itself: it burns every core while an automated learner acts through the CLI.
bench-grading: install
	$(PY) tests/bench/bench_grading.py

# Needs a Docker engine (and the base image: `make base-image` where no registry is reachable).
bench-compose: install
	$(PY) tests/bench/bench_compose.py --cold

# A compose sandbox's named volumes go too (MLflow's store, Grafana, PostgreSQL: their secrets are in .lab).
clean:
	@if [ -x $(LAB) ]; then $(LAB) down $(if $(wildcard .lab/runtime),--volumes); fi
	rm -rf .lab
