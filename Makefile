# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
# `make run` serves with gunicorn as production does; WORKERS x THREADS.
WORKERS ?= 2
THREADS ?= 4
FLASK  := $(BIN)/flask --app examples.host_app
# The demo's key, passed explicitly: the example forge refuses to start without one
# outside debug. Set SECRET_KEY (the same on every host) for anything but the demo.
DEMO_SECRET_KEY := demo-only-secret-key-not-for-production
demo-data run dev: export SECRET_KEY ?= $(DEMO_SECRET_KEY)
# The MLflow 2.x client for the compatibility tests lives in its own venv. MLflow 2.22's span
# processor never calls its base class's __init__: opentelemetry-sdk 1.45 reads attributes
# that __init__ sets and 2.22 then exports no trace at all (1.41-1.44 log an AttributeError
# per span); pip's default, the newest, is broken, so the venv pins the last clean release.
MLFLOW2_VENV := .venv-mlflow2
MLFLOW2_PACKAGES := "mlflow-skinny==2.22.*" "opentelemetry-sdk<1.41" "opentelemetry-api<1.41" scikit-learn pandas

.PHONY: install install-run demo-data run dev test test-quick soak bench fuzz wheel system-deps mlflow2 clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Serving needs only the server extras (gunicorn, psycopg, boto3): the fast path.
$(VENV)/.installed-run: pyproject.toml setup.cfg | $(BIN)/python
	$(BIN)/pip install -q -e ".[server,postgres,s3]"
	touch $@

# The tests add the test stack (MLflow client, playwright, moto, ...). Reinstall whenever
# pyproject.toml changes.
$(VENV)/.installed: pyproject.toml setup.cfg | $(BIN)/python
	$(BIN)/pip install -q -e ".[test,postgres,s3,server]"
	touch $(VENV)/.installed-run $@

install-run: $(VENV)/.installed-run
install: $(VENV)/.installed

# Debian packages the browser tests need (Chromium); installed only when missing.
system-deps:
	@scripts/ensure-system-deps.sh

# Redone when the Makefile changes (the pins above): pip downgrades what an older venv has.
$(MLFLOW2_VENV)/.installed: Makefile
	test -x $(MLFLOW2_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW2_VENV)
	$(MLFLOW2_VENV)/bin/pip install -q --upgrade pip
	$(MLFLOW2_VENV)/bin/pip install -q $(MLFLOW2_PACKAGES)
	touch $@

mlflow2: $(MLFLOW2_VENV)/.installed

# Migrate, seed the demo, print what to export.
demo-data: install-run
	$(FLASK) forge init-db
	$(FLASK) ml-tracking db upgrade
	$(FLASK) forge seed --base-url http://$(HOST):$(PORT)

# Served the way production serves it: gunicorn with the project's settings.
run: demo-data
	$(BIN)/gunicorn -c examples/gunicorn_conf.py -w $(WORKERS) --threads $(THREADS) -b $(HOST):$(PORT) examples.host_app:app

# Flask's development server with the reloader and debugger (debug keeps its own key).
dev: demo-data
	$(FLASK) run --debug --host $(HOST) --port $(PORT)

test: install system-deps mlflow2
	GLML_MLFLOW2_PYTHON=$(CURDIR)/$(MLFLOW2_VENV)/bin/python $(BIN)/python -m pytest $(PYTEST_ARGS)

test-quick: install
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# The load-and-faults runs at full size (tests/test_soak.py, the PostgreSQL crash-restart of
# tests/test_pg_crash_restart.py; figures in docs/RELIABILITY.md).
soak: install
	GLML_SOAK_FULL=1 $(BIN)/python -m pytest tests/test_soak.py tests/test_pg_crash_restart.py -s $(PYTEST_ARGS)

# The production artifact: a wheel in dist/ (pip install "dist/gl_ml_tracking-*.whl[postgres,s3]").
wheel: | $(BIN)/python
	$(BIN)/pip wheel -q --no-deps -w dist .

bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

fuzz: install
	GLML_FUZZ_EXAMPLES=$${GLML_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest tests/test_fuzz_api.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(MLFLOW2_VENV) build dist *.egg-info
