# zfleet: `make up` brings the whole cloud up on this machine, `make test` runs the suite.
# Both start with `make setup`, which installs what is missing (Debian packages, .venv).

PY      := .venv/bin/python
PYTEST  := .venv/bin/pytest
RUFF    := .venv/bin/ruff
RUN_DIR ?= $(CURDIR)/run/devcluster

.PHONY: help setup test unit integration lint up down reset status bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup:  ## install missing Debian packages and build .venv (idempotent; seconds when done)
	@bash scripts/setup.sh

test: setup lint  ## setup + lint + the whole test suite (unit and integration, real components)
	@$(PYTEST) tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

unit: setup  ## the fast unit tier only
	@$(PYTEST) tests/unit

integration: setup  ## the integration tier only (root: libvirtd, Ceph, namespaces)
	@$(PYTEST) tests/integration

lint: setup  ## ruff
	@$(RUFF) check .

up: setup  ## bring up the whole cloud (Ceph, 2 simulated KVM hosts, every agent, the coordinator) and a demo VM; after `make down`, the same cloud
	@$(PY) -m devcluster.cli --dir $(RUN_DIR) up

down:  ## stop everything `make up` started (the cloud's data stays for the next `make up`)
	@if [ -x $(PY) ]; then $(PY) -m devcluster.cli --dir $(RUN_DIR) down; fi

reset:  ## stop everything and remove the cloud's data: the next `make up` builds a new cloud
	@if [ -x $(PY) ]; then $(PY) -m devcluster.cli --dir $(RUN_DIR) reset; \
	else rm -rf $(RUN_DIR); echo "reset: removed $(RUN_DIR)"; fi

status:  ## what `make up` is running, and where
	@$(PY) -m devcluster.cli --dir $(RUN_DIR) status

bench: setup  ## the benchmarks under bench/
	@$(PY) bench/agent_http.py
	@$(PY) bench/vm_lifecycle.py
	@$(PY) bench/dhcp_apply.py
	@$(PY) bench/create_vms.py

clean: reset  ## reset, then remove .venv and run/ (the next `make up` installs again)
	rm -rf .venv run
