# psftp-shell developer commands.  `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_HOME ?= $(if $(XDG_DATA_HOME),$(XDG_DATA_HOME),$(HOME)/.local/share)
BIN_HOME ?= $(HOME)/.local/bin
PYTEST_ARGS ?=

.PHONY: test lint man check-man demo install uninstall bench bench-full clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg setup.py pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint]'
	touch $@

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check psftp_shell tests bench man
	$(PY) -m mypy

man: $(STAMP)
	$(PY) man/gen_manpage.py > man/psftp-shell.1.tmp
	mv man/psftp-shell.1.tmp man/psftp-shell.1

check-man: $(STAMP)
	$(PY) man/gen_manpage.py | cmp -s - man/psftp-shell.1 || \
	    { echo "man/psftp-shell.1 is stale: run make man"; exit 1; }

demo: $(STAMP)
	$(PY) -m psftp_shell.devserver demo

# A private virtualenv under the user's data directory, pipx-style, with
# the command linked into ~/.local/bin (Debian refuses system-wide pip).
install:
	$(PYTHON) -m venv "$(DATA_HOME)/psftp-shell/venv"
	"$(DATA_HOME)/psftp-shell/venv/bin/python" -m pip install -q .
	mkdir -p "$(BIN_HOME)"
	ln -sf "$(DATA_HOME)/psftp-shell/venv/bin/psftp-shell" \
	    "$(BIN_HOME)/psftp-shell"
	@echo "installed $(BIN_HOME)/psftp-shell"

uninstall:
	rm -rf "$(DATA_HOME)/psftp-shell/venv" "$(BIN_HOME)/psftp-shell"

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench quick

bench-full: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench full

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache

# The randomized fault campaign (tests/campaign.py): every transfer ends.
TRIALS ?= 300
SEED ?= 1
.PHONY: campaign
campaign: $(STAMP)
	$(PY) -m tests.campaign --trials $(TRIALS) --seed $(SEED) -v
