# Two entry points, both self-installing into ./.venv:
#   make demo   set everything up, then run groundctl on the embedded demo fleet
#   make test   set everything up, then lint, type-check and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml plugins/groundctl-kiss/pyproject.toml plugins/groundctl-mqtt/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e plugins/groundctl-kiss
	$(BIN)/python -m pip install --quiet -e plugins/groundctl-mqtt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/groundctl demo

lint: $(STAMP)
	$(BIN)/ruff check groundctl tests bench screenshots plugins
	$(BIN)/ruff format --check groundctl tests bench screenshots plugins

typecheck: $(STAMP)
	$(BIN)/mypy groundctl/orbits groundctl/mdb groundctl/telemetry groundctl/errors.py groundctl/config.py groundctl/tomlreader.py groundctl/sim groundctl/links groundctl/commanding groundctl/procedures groundctl/commander.py groundctl/session.py groundctl/archive/commands.py groundctl/archive/audit.py groundctl/archive/export.py groundctl/replay.py groundctl/recordings.py groundctl/ingest.py groundctl/station groundctl/operations.py groundctl/planning plugins/groundctl-kiss/groundctl_kiss plugins/groundctl-mqtt/groundctl_mqtt

test: lint typecheck
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python bench/passes.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
