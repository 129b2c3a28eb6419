# The README's two commands. Each creates .venv when missing and installs sklimg into it,
# so that on a fresh machine with only Python either works alone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sklimg-installed
DOCS_STAMP := $(VENV)/.sklimg-docs-installed

.PHONY: demo test lint install clean fashion-mnist chromium docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	-@$(MAKE) --no-print-directory fashion-mnist
	-@$(MAKE) --no-print-directory chromium
	touch $(STAMP)

# Fashion-MNIST for the tests that use it (they skip without it), from the Debian/Ubuntu
# package, only where apt-get exists and we are root; never fails the install.
fashion-mnist:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  { apt-get install -y -qq dataset-fashion-mnist \
	    || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; }; } >/dev/null 2>&1 \
	  || echo "note: could not install dataset-fashion-mnist; its tests will be skipped"; \
	else echo "note: Fashion-MNIST not installed (needs apt-get as root); its tests will be skipped"; fi

# Headless Chromium and its driver for the browser test of 'sklimg serve' (it skips
# without them; selenium is pointed at these, so nothing is downloaded), likewise.
chromium:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  { apt-get install -y -qq chromium chromium-driver \
	    || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }; } >/dev/null 2>&1 \
	  || echo "note: could not install chromium and chromium-driver; the browser test will be skipped"; \
	else echo "note: Chromium not installed (needs apt-get as root); the browser test will be skipped"; fi

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The suite runs on the CPU everywhere (tests/conftest.py hides a GPU); where torch sees
# one, the tests marked cuda then run on it.
test: lint
	$(BIN)/python -m pytest
	@if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; \
	then SKLIMG_TEST_CUDA=1 $(BIN)/python -m pytest; fi

# The documentation (Sphinx, numpydoc, sphinx-gallery) into docs/_build/html, offline,
# warnings as errors; the gallery runs examples/plot_*.py and keeps their figures.
$(DOCS_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -b html -W --keep-going docs docs/_build/html

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache *.egg-info
	rm -rf docs/_build docs/auto_examples docs/generated
