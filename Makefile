# The README's two commands: `make demo` (the main job) and `make test` (the tests).
# Each sets everything up on a fresh Debian machine: .venv, the package, Debian packages
# (when run as root), the Kafka jars from Maven Central. Second runs are fast (stamps, caches).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEBIAN_PACKAGES := prometheus prometheus-alertmanager kcat chromium fonts-wqy-microhei
PYTEST_ARGS ?=

.PHONY: setup demo test lint typecheck bench soak lock clean system-packages kafka-jars

setup: $(STAMP) system-packages kafka-jars

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

# Prometheus, Alertmanager, kcat, Chromium (the HTML scorecard test) and a CJK font (Chinese
# department names in its screenshot) come from Debian; install what is missing when we are root.
system-packages:
	@missing=""; \
	for cmd in prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager kcat:kcat promtool:prometheus amtool:prometheus-alertmanager chromium:chromium; do \
	  command -v $${cmd%%:*} >/dev/null 2>&1 || missing="$$missing $${cmd##*:}"; \
	done; \
	dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)" >&2; exit 2; \
	  fi; \
	fi

kafka-jars: $(STAMP)
	$(BIN)/deptpulse stack install

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/deptpulse demo

bench: setup
	$(BIN)/python -m benchmarks.run_all

soak: setup
	$(BIN)/pytest tests/reliability -m reliability --run-slow -s $(PYTEST_ARGS)

# Re-resolve the pinned set after changing pyproject.toml's ranges.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^deptpulse' > constraints.txt
	rm -rf .lock-venv

clean:
	-$(BIN)/deptpulse stack down
	rm -rf .deptpulse
