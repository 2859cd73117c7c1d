# The lab's entry points. `make up` and `make test` install and start
# everything they need (Debian packages, a Docker engine, the base image, the
# venv) on a Debian machine where they run as root.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV       ?= .venv
PYTHON     ?= python3
# Debian suites every scenario runs on, and scenario runs at once (empty:
# twice the cores, see wslab/scenarios.py).
SUITES     ?= bookworm trixie
JOBS       ?=
# One layout (a scenario name) for quick work: make test LAYOUT=daphne
LAYOUT     ?=
BIN        := $(VENV)/bin
LAB_INV    := inventories/lab
# The lab containers' suite (inventories/lab/group_vars/wslab_lab/containers.yml).
LAB_SUITE  := bookworm
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Bytecode of every module any of the lab's Pythons imports, compiled once and
# kept outside the source tree: the venv is installed without it (uv), and a
# Python that reads no bytecode compiles each import again, about a second of
# CPU more for every ansible-playbook, molecule and pytest process.
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX := $(CURDIR)/build/pycache
export ANSIBLE_NOCOLOR := 1
export NO_COLOR := 1
export ANSIBLE_FORCE_COLOR := 0

.PHONY: help up down test lint unit molecule venv lock engine images host-deps browser-deps bench-deps matrix runbook bench bench-smoke lint-and-bench molecule-after-unit

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

up: host-deps engine venv  ## deploy every lab layout into local containers and print the verified matrix
	@echo "up: base images for $(LAB_SUITE)"
	scripts/base-image.sh $(LAB_SUITE) seeded
	@echo "up: starting the lab containers"
	$(BIN)/ansible-playbook playbooks/lab.yml -i $(LAB_INV)
	@echo "up: deploying every layout with site.yml"
	$(BIN)/ansible-playbook site.yml -i $(LAB_INV)
	@echo "up: probing every layout"
	$(BIN)/python -m wslab.matrix -i $(LAB_INV)

matrix: venv  ## probe the running lab again and print the matrix
	$(BIN)/python -m wslab.matrix -i $(LAB_INV)

down: venv  ## remove the lab's containers
	$(BIN)/ansible-playbook playbooks/lab.yml -i $(LAB_INV) -e wslab_lab_state=absent

# Two lines of work at once, a core each: lint, then a quick bench; the unit
# tests, then every Molecule scenario, which start the moment the unit tests
# pass, beside what is left of the bench (its figures are not the
# benchmark's). A failure in one line keeps the other from starting its next
# step; what runs already runs to its end.
test: host-deps engine images venv browser-deps bench-deps  ## lint, unit tests, a quick bench, every Molecule scenario
	@echo "test: lint then a quick bench, beside the unit tests then every Molecule scenario"
	$(MAKE) --no-print-directory -j2 lint-and-bench molecule-after-unit

molecule-after-unit: unit
	@echo "test: every Molecule scenario"
	$(MAKE) --no-print-directory molecule

lint: venv  ## yamllint and ansible-lint (production profile)
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint

lint-and-bench:
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory bench-smoke

# The bench end to end (deploy, wrk, the socket client, the report) on one
# layout with the small plan, then its container removed: it cannot rot. Its
# figures, taken beside the unit tests and the first scenarios, are not the
# benchmark's.
bench-smoke: host-deps engine venv bench-deps  ## make bench QUICK=1 LAYOUT=daphne, then remove its container
	$(MAKE) --no-print-directory bench QUICK=1 LAYOUT=daphne
	$(BIN)/ansible-playbook playbooks/lab.yml -i inventories/bench \
	    -e '{"wslab_lab_state": "absent", "wslab_lab_hosts": ["wslab-bench-daphne"]}'

# One pytest worker per core (pytest-xdist): most of the suite waits on
# containers, servers and Ansible runs, one at a time per worker. The longest
# tests go first (tests/conftest.py), and a worker that runs out of tests takes
# some of the other's (worksteal): neither core idles while tests are left.
unit: engine venv browser-deps  ## the project's pytest suite (sample app, probe, filters, data)
	$(BIN)/pytest -n auto --dist worksteal

molecule: host-deps engine images venv  ## every scenario on every suite (or LAYOUT=name), JOBS at once
	$(BIN)/python -m wslab.scenarios --jobs '$(JOBS)' $(foreach s,$(SUITES),--suite $(s)) $(if $(LAYOUT),--layout $(LAYOUT))

# Deploys its own containers (inventories/bench: wslab-bench-*, apart from the
# lab's), measures each layout in turn (wslab/bench.py), then renders
# docs/bench.md and its plots from the run (wslab/benchreport.py; commit
# docs/bench.md and docs/bench/ together). QUICK=1: a small run whose report
# goes to build/bench/bench.md, docs/ untouched. LAYOUT=x: that layout only.
bench: host-deps engine venv bench-deps  ## measure the layouts side by side (LAYOUT=x, QUICK=1) and render docs/bench.md
	@echo "bench: base image for $(LAB_SUITE)"
	scripts/base-image.sh $(LAB_SUITE) seeded
	$(BIN)/python -m wslab.bench $(if $(QUICK),--quick) $(if $(LAYOUT),--layout $(LAYOUT))
	$(BIN)/python -m wslab.benchreport $(if $(QUICK),--build-only,--update)

# After a full make test: the run's build/findings/ become docs/findings/ (the
# old set replaced, provenance.json written), and docs/runbook.md's tables are
# rendered again from them; commit the three together.
runbook: venv  ## copy the run's findings into docs/findings/ and re-render docs/runbook.md's tables
	$(BIN)/python -m wslab.runbook --update

# The venv holds exactly requirements/lab.lock (every package, pinned and
# hashed), installed by uv from its cache: seconds once the cache is warm.
# UV_NATIVE_TLS: uv trusts the system's CA store, as pip does here.
# The project's own package (wslab/: the layout schema, the probe, the runner)
# is importable from the venv by a path file, as an editable install would make
# it, without a build backend: the Ansible filters, the Molecule suites and the
# tests import it from wherever they run.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements/lab.lock requirements/bootstrap.lock | host-deps
	@echo "venv: $(VENV) from requirements/lab.lock"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/bootstrap.lock
	UV_NATIVE_TLS=1 $(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes requirements/lab.lock
	$(BIN)/python -c 'import site, sys; open(site.getsitepackages()[0] + "/wslab.pth", "w").write(sys.argv[1] + "\n")' '$(CURDIR)'
	touch $@

# After editing a requirements/*.txt or sample_app/requirements.txt: resolve
# each again into its .lock, every package pinned and hashed: the lab's for the
# controller's Python, the app's (and the uvicorn-alone example's) for every
# Python the hosts may have (Debian 12's 3.11 to Debian 13's 3.13: --universal
# keeps the markers).
# tests/test_requirements.py checks that each lock holds its pins.
LOCK_PYTHON := 3.11
lock: $(VENV)/.installed  ## resolve the requirements into their .lock files, with hashes
	for name in lab bootstrap; do \
	    UV_NATIVE_TLS=1 $(BIN)/uv pip compile --quiet --generate-hashes --python-version $(LOCK_PYTHON) \
	        --custom-compile-command 'make lock' requirements/$$name.txt -o requirements/$$name.lock; \
	done
	for name in sample_app examples/uvicorn-alone; do \
	    UV_NATIVE_TLS=1 $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version $(LOCK_PYTHON) \
	        --custom-compile-command 'make lock' $$name/requirements.txt -o $$name/requirements.lock; \
	done

host-deps:
	@scripts/host-deps.sh

browser-deps:
	@scripts/browser-deps.sh

bench-deps:
	@scripts/bench-deps.sh

engine:
	@scripts/docker-engine.sh

# Per suite: the pure image, and the one seeded with what every layout installs.
images: engine
	@for suite in $(SUITES); do scripts/base-image.sh $$suite seeded; done
