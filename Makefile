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
export PYTHONDONTWRITEBYTECODE := 1
export ANSIBLE_NOCOLOR := 1
export NO_COLOR := 1
export ANSIBLE_FORCE_COLOR := 0

.PHONY: help up down test lint unit molecule venv engine images host-deps browser-deps matrix

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

# Lint and the unit tests side by side (one core each), then the scenarios.
test: host-deps engine images venv browser-deps  ## lint, unit tests, every Molecule scenario
	@echo "test: lint and unit tests, side by side"
	$(MAKE) --no-print-directory -j2 lint unit
	@echo "test: every Molecule scenario"
	$(MAKE) --no-print-directory molecule

lint: venv  ## yamllint and ansible-lint (production profile)
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint

unit: engine venv browser-deps  ## the project's pytest suite (sample app, probe, filters, data)
	$(BIN)/pytest

molecule: host-deps engine images venv  ## every scenario on every suite (or LAYOUT=name), JOBS at once
	$(BIN)/python -m wslab.scenarios --jobs '$(JOBS)' $(foreach s,$(SUITES),--suite $(s)) $(if $(LAYOUT),--layout $(LAYOUT))

venv: $(VENV)/.installed
$(VENV)/.installed: requirements/lab.txt sample_app/requirements.txt | host-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/lab.txt
	touch $@

host-deps:
	@scripts/host-deps.sh

browser-deps:
	@scripts/browser-deps.sh

engine:
	@scripts/docker-engine.sh

# Per suite: the pure image, and the one seeded with what every layout installs.
images: engine
	@for suite in $(SUITES); do scripts/base-image.sh $$suite seeded; done
