# KVM concurrency, stepped through: the two commands.
#   make book   set up everything (apt: graphviz, chromium; .venv; pip) and build the executed book
#   make test   ruff, unit/model/notebook tests, the book build, browser tests in headless Chromium
# Also: make serve (view _build/html on http://127.0.0.1:8000), make bench, make clean.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
STAMP  := $(VENV)/.installed
JB_FLAGS ?= -W --keep-going
SRC_STAMP := _build/.kvmlab-src.stamp
KVMLAB_SRC := $(shell find src/kvmlab -type f \( -name '*.py' -o -name '*.js' -o -name '*.css' \) 2>/dev/null)

.PHONY: book serve test lint unit booktest browser notebooks sysdeps setup bench clean pair web

book: setup pair web $(SRC_STAMP)
	$(BIN)/jupyter-book build . $(JB_FLAGS)

# Executed pages are cached by their own text only, but their outputs come from the kvmlab
# package (models, verdicts, the stepper's JavaScript): when the package changes, drop the cache.
$(SRC_STAMP): $(KVMLAB_SRC)
	rm -rf _build/.jupyter_cache
	mkdir -p _build
	touch $@

# The runnable labs' browser runtime: Pyodide and the CodeMirror editor from the npm registry,
# pinned by web/package-lock.json, vendored into vendor/web (tools/vendor_web.py; cached: no
# download when present). The book build copies it into _build/html/_kvmlab with a kvmlab wheel.
WEB_STAMP := vendor/web/_kvmlab/runtime.json
web: $(WEB_STAMP)
$(WEB_STAMP): web/package.json web/package-lock.json web/editor.mjs tools/vendor_web.py | $(BIN)/python
	$(BIN)/python tools/vendor_web.py

# System packages (Debian): only when missing; apt-get update first.
sysdeps:
	@bash tools/sysdeps.sh

setup: sysdeps $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt -e .
	$(BIN)/python -m pip check
	touch $@

# Colab/Binder/JupyterHub open .ipynb files: keep book/*.ipynb in step with book/*.md.
pair: setup
	$(BIN)/python tools/pair_notebooks.py

serve:
	@test -f _build/html/index.html || { echo "no _build/html: run 'make book' first"; exit 1; }
	@echo "serving the book on http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

# The unit tests and the tests of the built book run side by side (the machine's two cores; each
# target's output is printed whole when it ends); either failing fails make test.
test: setup lint book
	$(MAKE) --no-print-directory -j2 --output-sync=target unit booktest

# book/*.ipynb are generated twins of the chapter pages (tools/pair_notebooks.py): not linted.
lint: setup
	$(BIN)/ruff check . --extend-exclude "book/*.ipynb"

# Unit, model and notebook tests (everything that does not need the built book).
unit: setup
	$(BIN)/python -m pytest -p no:cacheprovider -m "not browser and not book and not wide"

# Tests of the built book, including headless Chromium; missing book/Chromium is a failure here.
booktest: setup
	KVMLAB_REQUIRE_BOOK=1 $(BIN)/python -m pytest -p no:cacheprovider -m "book or browser"

bench: setup pair
	$(BIN)/python tools/bench_book.py

clean:
	rm -rf _build
