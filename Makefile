# Two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The real CT sample the real-data tests use (`mbnas sample lung-ct`), made once.
SAMPLE := .cache/samples/lung-ct
SAMPLE_CACHE := .cache/mbnas

.PHONY: demo test lint bench clean lock

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml requirements.lock | $(PY)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e ".[test,ray,nnunet,onnx,dashboard,dicom]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mbnas demo --out runs/demo

$(SAMPLE)/provenance.json: | $(STAMP)
	$(VENV)/bin/mbnas sample lung-ct --out $(SAMPLE) --cache $(SAMPLE_CACHE)

# The layer, circle and heavy-import contracts (pyproject.toml) first: a circle fails here;
# then the type checker (pyproject.toml [tool.mypy]: strict on the light rooms).
test: $(STAMP) $(SAMPLE)/provenance.json
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	MBNAS_LUNG_SAMPLE=$(SAMPLE) MBNAS_SAMPLE_CACHE=$(SAMPLE_CACHE) $(PY) -m pytest -q -n 2 --dist loadscope

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf runs .pytest_cache

# Pin what is installed now (after changing pyproject.toml's dependencies).
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | sed '/^-e /d' > requirements.lock.new
	(head -2 requirements.lock; cat requirements.lock.new) > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock && rm requirements.lock.new
