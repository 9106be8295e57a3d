# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint prometheus bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The real Prometheus server for the adapter tests (Debian package, installed as root).
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "prometheus is not installed: run 'sudo apt-get install -y --no-install-recommends prometheus'" >&2; exit 1; \
	  fi; }

lint: $(STAMP)
	$(BIN)/ruff check autoscaler forecasting tests bench
	$(BIN)/lint-imports

test: $(STAMP) prometheus lint
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/prescaler demo

clean:
	rm -rf $(VENV) demo-report .pytest_cache .hypothesis
