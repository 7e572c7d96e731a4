# On a fresh machine with Python 3.11 only:
#   make book   build the whole book, executing every chapter (output in _build/html)
#   make test   the whole test suite: lint (ruff, notebooks included), tests/ and one book build
#               that executes every chapter (its notebook test) and feeds the browser test
#   make lab    open the chapters in JupyterLab with the project's kernel (hcd-lite)
#   make student  the student edition (no solutions, no outputs) in _build/student
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip

# The machines we build on have 2 cores; keep torch from oversubscribing them.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2

.PHONY: venv book test lint lab student browser-deps clean

venv: $(STAMP)

# torch goes first and pinned: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --progress-bar off torch==2.13.0
	$(PIP) install --progress-bar off -r requirements.txt
	$(PIP) install --progress-bar off -e . --no-deps
	$(BIN)/python -m ipykernel install --sys-prefix --name hcd-lite --display-name "Python (hcd-lite)"
	touch $@

# _build/.book-build-ok marks a successful build (tests/test_browser.py rebuilds without it).
book: venv
	rm -f _build/.book-build-ok
	$(BIN)/jupyter-book build . -W -n --keep-going --all
	touch _build/.book-build-ok

test: venv browser-deps lint
	$(BIN)/python -m pytest

# Line length, unused imports and variables, undefined names: the package, the tests and the
# notebooks (ruff reads .ipynb itself). Settings in pyproject.toml.
lint: venv
	$(BIN)/ruff check .

# Browser tests drive Debian's Chromium (`playwright install` cannot download browsers here).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then \
	  echo "browser-deps: /usr/bin/chromium present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 chromium chromium-driver; \
	else \
	  echo "browser-deps: no /usr/bin/chromium and not root; browser tests will skip (fail if CI is set)"; \
	fi

# The chapters in JupyterLab (jupyterlab-myst renders their MyST prose and {eval} numbers).
lab: venv
	$(BIN)/jupyter lab --ServerApp.root_dir=book $(if $(filter 0,$(shell id -u)),--allow-root)

student: venv
	$(BIN)/python scripts/student_edition.py _build/student

clean:
	rm -rf _build
