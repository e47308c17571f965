# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
FLASK  := $(BIN)/flask --app examples.host_app
# The MLflow 2.x client for the compatibility smoke test lives in its own venv.
MLFLOW2_VENV := .venv-mlflow2

.PHONY: install run test test-quick bench fuzz system-deps mlflow2 clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml setup.cfg | $(BIN)/python
	$(BIN)/pip install -q -e ".[test,postgres,s3,server]"
	touch $@

install: $(VENV)/.installed

# Debian packages the browser tests need (Chromium); installed only when missing.
system-deps:
	@scripts/ensure-system-deps.sh

$(MLFLOW2_VENV)/.installed:
	$(PYTHON) -m venv $(MLFLOW2_VENV)
	$(MLFLOW2_VENV)/bin/pip install -q --upgrade pip
	$(MLFLOW2_VENV)/bin/pip install -q "mlflow-skinny==2.22.*" scikit-learn pandas
	touch $@

mlflow2: $(MLFLOW2_VENV)/.installed

run: install
	$(FLASK) forge init-db
	$(FLASK) ml-tracking db upgrade
	$(FLASK) forge seed --base-url http://$(HOST):$(PORT)
	$(FLASK) run --host $(HOST) --port $(PORT)

test: install system-deps mlflow2
	GLML_MLFLOW2_PYTHON=$(CURDIR)/$(MLFLOW2_VENV)/bin/python $(BIN)/python -m pytest $(PYTEST_ARGS)

test-quick: install
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

fuzz: install
	GLML_FUZZ_EXAMPLES=$${GLML_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest tests/test_fuzz_api.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(MLFLOW2_VENV) build dist *.egg-info
