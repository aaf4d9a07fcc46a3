# Two entry points for a newcomer: `make demo` and `make test`. Both build .venv/ when missing.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench drills peers clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: otherwise sentence-transformers pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/storywire demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check models stream tests bench
	$(VENV)/bin/mypy models stream

bench: $(STAMP)
	$(PY) bench/cluster_speed.py
	$(PY) bench/quality.py
	$(PY) bench/stream_speed.py

drills: $(STAMP)
	$(PY) bench/chaos.py --kills 3
	$(PY) bench/faults.py

peers: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) bench/peers.py

clean:
	rm -rf $(VENV) reports
