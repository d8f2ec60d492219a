# Two commands do everything on a fresh clone: `make demo` and `make test`.
# Only Python 3.11 and make are needed; uv is installed into .mapstudy/ if it is missing.

PYTHON      ?= python3.11
UV_VERSION  := 0.13.9
LOCAL_UV    := .mapstudy/uv/bin/uv
UV          := $(shell command -v uv 2>/dev/null || echo $(LOCAL_UV))
VENV        := .venv
RUN         := $(VENV)/bin
export DAGSTER_HOME             := $(CURDIR)
export MAPSTUDY_DAGSTER_STORAGE := $(CURDIR)/.mapstudy/dagster
export MAPSTUDY_DAGSTER_LOGS    := $(CURDIR)/.mapstudy/logs
export UV_PYTHON                := $(PYTHON)
# Install packages with their bytecode compiled: where PYTHONDONTWRITEBYTECODE is set (CI
# images often set it) every process, and every report kernel, would otherwise compile
# some 2,600 modules again (13 s to import the code location, 5 s with bytecode).
export UV_COMPILE_BYTECODE      := 1

PUPILS ?= 3000
SEED   ?= 20231
STUDY  ?= studies/demo.yaml

.PHONY: setup demo test test-slow bench dev clean help

help:
	@echo "make demo      set up, generate the demo study, run every asset, render the reports"
	@echo "make test      run the fast tests (make test-slow for the slow statistical ones)"
	@echo "make bench     time each stage and the whole run on a bench copy of the demo (BENCH=long: 30k/100k pupils, personas scaling)"
	@echo "make dev       open the Dagster UI on the demo study (make dev STUDY=studies/x.yaml: on study x)"

$(LOCAL_UV):
	$(PYTHON) -m venv .mapstudy/uv
	.mapstudy/uv/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml | $(if $(shell command -v uv 2>/dev/null),,$(LOCAL_UV))
	$(UV) sync --frozen --all-groups
	@touch $@

setup: $(VENV)/.synced

demo: setup
	$(RUN)/mapstudy demo --pupils $(PUPILS) --seed $(SEED)

test: setup
	$(RUN)/python -m pytest -q

test-slow: setup
	$(RUN)/python -m pytest -q -m slow

bench: setup
	BENCH=$(BENCH) $(RUN)/python -m tests.bench.run_all

dev: setup
	@test "$(STUDY)" != studies/demo.yaml || test -f data/processed/demo.duckdb || $(RUN)/mapstudy demo
	MAPSTUDY_STUDY=$(abspath $(STUDY)) $(RUN)/dagster dev -m pipelines.definitions

clean:
	rm -rf data/processed/*.duckdb reports/_output .mapstudy/dagster .mapstudy/logs
