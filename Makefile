# horde's build entry points. `make demo` and `make test` work on a fresh machine with
# Python 3.11 and make: each creates .venv and installs what it needs first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TYPECHECK_TREE := build/typecheck

.PHONY: demo test lint format clean browser pods bench bench-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/horde demo

# The dashboard test drives Debian's Chromium (never a downloaded browser): install it
# from Debian's packages when it is missing (as root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium for the dashboard test"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# The deploy/ tests render the manifests with kubectl (not in Debian 12 at a recent version:
# install it yourself) and play them on Debian's podman 4.3 (runc, netavark and aardvark-dns
# for pod-name DNS, catatonit for pods, debootstrap for the base image), installed here
# when missing. tests/test_pods.py passes deploy/podman/containers.conf to podman.
POD_PACKAGES := podman runc netavark aardvark-dns catatonit debootstrap
pods:
	@command -v kubectl >/dev/null || { \
		echo "kubectl is missing: the deploy/ tests render the manifests with 'kubectl kustomize'"; \
		echo "(install it: https://kubernetes.io/docs/tasks/tools/)"; exit 1; }
	@dpkg -s $(POD_PACKAGES) >/dev/null 2>&1 || { \
		echo "installing Debian's $(POD_PACKAGES) for the pod tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			$(POD_PACKAGES); }

test: $(VENV)/.installed-dev browser pods
	$(BIN)/python -m pytest --cov --cov-branch --cov-report=term:skip-covered

# Benchmarks, not tests: each script starts its own loopback target, runs horde and its
# peers interleaved, prints medians and ratios, and exits non-zero when horde misses its goal.
# They need Debian's nginx and wrk (installed here when missing, as root or through sudo).
BENCHES := bench/worker_throughput.py bench/user_memory.py bench/master_capacity.py bench/spin_rate.py
bench-tools:
	@command -v nginx >/dev/null && command -v wrk >/dev/null && command -v taskset >/dev/null || { \
		echo "installing Debian's nginx-light and wrk for the benchmarks"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			nginx-light wrk util-linux; }

bench: $(VENV)/.installed-dev bench-tools
	@status=0; for script in $(BENCHES); do \
		echo "=== $$script"; $(BIN)/python $$script || status=1; \
	done; exit $$status

# The layout check: the master imports only the worker's user API (worker/api/), never its
# runtime; protocol/ stays pure; no module over 500 lines or without a docstring.
#
# mypy cannot follow setuptools' package-dir mapping, so it checks a copy laid out as
# the installed package is (horde/, horde/master, horde/worker, horde/protocol).
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)
	cp -r horde $(TYPECHECK_TREE)/horde
	cp -r master $(TYPECHECK_TREE)/horde/master
	cp -r worker $(TYPECHECK_TREE)/horde/worker
	cp -r protocol $(TYPECHECK_TREE)/horde/protocol
	cd $(TYPECHECK_TREE) && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p horde
	$(BIN)/python .ci/check_layout.py

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .coverage
