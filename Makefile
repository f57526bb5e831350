# Thin wrappers around cargo and infra/local/*.sh. `make dev` runs the whole
# platform locally; `make test` runs every test against the same local stack.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Where infra/local/up.sh keeps its state and writes the env file.
STATE_DIR := $(or $(LECTERN_STATE_DIR),$(CURDIR)/.local)
ENV_FILE := $(STATE_DIR)/env
PYTHON ?= python3

# Run cfn-lint through its entry point, so that a fresh `pip install` is usable
# even where the new console script is not on PATH yet (pyenv shims, ~/.local/bin).
CFN_LINT := $(PYTHON) -c 'import sys; from importlib.metadata import entry_points; \
	ep = next(iter(entry_points(group="console_scripts", name="cfn-lint"))); \
	sys.argv[0] = "cfn-lint"; sys.exit(ep.load()())'

.PHONY: help dev provision test stop reset status lint fmt bench

help:
	@echo 'make dev     start PostgreSQL + moto, then the devstack (every function, one base URL)'
	@echo 'make provision  start PostgreSQL + moto, create the template'"'"'s AWS resources in moto, migrate'
	@echo 'make test    start PostgreSQL + moto, then cargo test --workspace (RUST_TEST_THREADS, default 8)'
	@echo 'make stop    stop PostgreSQL + moto (data kept)'
	@echo 'make reset   stop them and delete all local state'
	@echo 'make status  what runs where'
	@echo 'make lint    rustfmt check, clippy -D warnings, cfn-lint template.yaml'
	@echo 'make fmt     cargo fmt --all'
	@echo 'make bench   release build, fresh benchmark database, cold/warm/size/memory/scale figures in one table (BENCHMARKS.md)'

dev:
	infra/local/up.sh
	source '$(ENV_FILE)' && cargo run -p lectern-devstack --

provision:
	infra/local/up.sh
	source '$(ENV_FILE)' && cargo run -p lectern-devstack -- --provision-only

test:
	infra/local/up.sh
	source '$(ENV_FILE)' && RUST_TEST_THREADS="$${RUST_TEST_THREADS:-8}" cargo test --workspace

stop:
	infra/local/down.sh

reset:
	infra/local/reset.sh

status:
	@infra/local/status.sh || true

lint:
	@if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then \
		echo 'rustup component add rustfmt clippy'; rustup component add rustfmt clippy; fi
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	@if ! $(PYTHON) -c 'import cfnlint' >/dev/null 2>&1; then \
		echo '$(PYTHON) -m pip install cfn-lint'; \
		$(PYTHON) -m pip install -q cfn-lint 2>/dev/null || \
			$(PYTHON) -m pip install -q --break-system-packages cfn-lint; fi
	$(CFN_LINT) template.yaml

fmt:
	cargo fmt --all

# Figures, not tests: builds release binaries, starts the local stack, benchmarks into a fresh
# database and prints one table (also target/bench/table.md). See BENCHMARKS.md.
bench:
	bench/run.sh
