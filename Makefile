# Everything a fresh machine needs is installed by these targets; nothing is done by hand.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
# Portable llama.cpp build: the native build crashes in the AMX matrix kernel on these machines.
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
export UV_PROJECT_ENVIRONMENT := $(VENV)
HOST ?= 127.0.0.1
PORT ?= 8700

.PHONY: install serve test test-fast lint typecheck bench bench-check clean

$(UV): tools/uv-requirements.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r tools/uv-requirements.txt
	touch $(UV)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra router --compile-bytecode --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

serve: install
	$(VENV)/bin/modelyard serve --host $(HOST) --port $(PORT) $(if $(CONFIG),--config $(CONFIG),)

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/python -m modelyard.cli.docgen --check

# The generated parts of docs/ (CLI reference, config reference, config JSON schema).
.PHONY: docs
docs: install
	$(VENV)/bin/python -m modelyard.cli.docgen

typecheck: install
	$(VENV)/bin/mypy

# The OS packages the suite drives (promtool, nginx, Chromium for the portal's browser tests:
# Playwright's own browser download is not used), installed when missing.
.PHONY: os-packages
os-packages:
	tools/os-packages.sh

# The browser tests write their screenshots to build/artifacts/portal/; this run writes them
# over the committed copies that docs/portal.md shows.
.PHONY: screenshots
screenshots: install os-packages
	MODELYARD_SCREENSHOTS=$(CURDIR)/docs/portal/screenshots $(VENV)/bin/pytest -q -p no:cacheprovider tests/browser

# The test runs keep compiled bytecode: with PYTHONDONTWRITEBYTECODE set (as on these machines)
# every run compiled src/ and re-rewrote the asserts of every test module in each worker and in
# each spawned process (the venv's packages are compiled at install): the fast run's collection
# took 11-13 s per worker instead of 6. An empty value is "unset" for Python.
# One BLAS/OpenMP thread per process: the suite already keeps every core busy (one pytest-xdist
# worker each), and numpy's OpenBLAS and scikit-learn's OpenMP threads spin-waiting for each
# other beside them made the router-training tests take 9 s of CPU instead of 5.
TEST_ENV := PYTHONDONTWRITEBYTECODE= OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

test: install os-packages lint typecheck
	$(TEST_ENV) MODELYARD_TESTS_OS_PACKAGES=1 $(VENV)/bin/pytest -q --durations=25 $(PYTEST_ARGS)

# The inner loop, on every core (pytest-xdist): no server spawned, no model loaded (the markers are applied in
# tests/conftest.py; MODELYARD_TESTS_FAST fails a test that would start a server unmarked).
# The directories left out hold only tests these markers leave out (marked by path): collecting
# them imported every SDK and client in each worker for nothing (13 s of collection became 9 s).
# Property tests draw a quarter of their examples here (the `fast` Hypothesis profile,
# tests/properties.py); `make test` draws them all.
FAST_MARKERS := not integration and not postgres and not redis and not local_model and not slow and not adversarial
FAST_SKIPPED_DIRS := --ignore=tests/integration --ignore=tests/adversarial --ignore=tests/browser
test-fast: install
	$(TEST_ENV) MODELYARD_TESTS_FAST=1 $(VENV)/bin/pytest -q -n auto -m "$(FAST_MARKERS)" $(FAST_SKIPPED_DIRS) -p no:cacheprovider --hypothesis-profile=fast $(PYTEST_ARGS)

# The container image, built with podman from the Containerfile (deploy/container/build.sh: the
# base is made from Debian packages with mmdebstrap when no registry answers; llama.cpp compiles,
# minutes), and the smoke test that runs it (tests/integration/test_container_image.py).
.PHONY: image image-smoke
image:
	deploy/container/build.sh

image-smoke: install image
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/integration/test_container_image.py

bench: install
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

# Every floor's stated cost (bench/budgets.toml) against a short run of its benchmark: ratios
# measured in the same run, a few minutes in all; exits 1 on a miss. Not part of `make test`.
bench-check: install
	$(VENV)/bin/python -m bench.check $(BENCH_CHECK_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
