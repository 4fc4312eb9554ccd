# psftp-shell developer commands.  `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_HOME ?= $(if $(XDG_DATA_HOME),$(XDG_DATA_HOME),$(HOME)/.local/share)
BIN_HOME ?= $(HOME)/.local/bin
MAN_HOME ?= $(DATA_HOME)/man
PYTEST_ARGS ?=
LOCK := requirements/lock.txt
# The slice of the suite that runs on the newest dependencies: the
# differential scripts over sshd, the pty tests, the parallel engine,
# logins, the libraries' warnings and the adapters on asyncssh's
# internals.  The smoke slice runs on the other Pythons.
NEWEST_TESTS ?= tests/test_differential.py tests/test_differential_cli.py \
	tests/test_pty.py tests/test_pty_view.py tests/test_parallel.py \
	tests/test_quicklogin.py tests/test_depwarnings.py \
	tests/test_fast_receive.py tests/test_fast_receive_edges.py \
	tests/test_sshfast.py
NEWEST_SELECT ?= not test_script or sshd
SMOKE_TESTS ?= tests/test_depwarnings.py tests/test_quicklogin.py \
	tests/test_grammar.py tests/test_protocol.py tests/test_pipes.py \
	tests/test_fast_receive.py

.PHONY: test lint man check-man demo install install-man uninstall bench \
	bench-full bench-cpu clean lock test-newest test-python lint-imports

$(PY):
	@$(PYTHON) -m venv $(VENV)

# The tests run on the locked set: exact versions, checked by hash.
$(STAMP): setup.cfg setup.py pyproject.toml $(LOCK) | $(PY)
	@$(PY) -m pip install -qq --require-hashes -r $(LOCK)
	@$(PY) -m pip install -qq --no-deps -e .
	@touch $@

# Re-resolve the lock on purpose: after changing a requirement in
# setup.cfg, or to move the tested set to the newest releases (then run
# `make test` and commit the new lock with what it needed).
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -qq pip-tools
	.venv-lock/bin/pip-compile -q --upgrade --generate-hashes \
	    --allow-unsafe --extra test --extra lint --strip-extras \
	    --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	    -o $(LOCK) setup.cfg
	rm -rf .venv-lock

# The newest releases setup.cfg allows, in a second environment: a
# failure names the packages that differ from the lock.
test-newest:
	rm -rf .venv-newest
	$(PYTHON) -m venv .venv-newest
	.venv-newest/bin/python -m pip install -qq --upgrade \
	    --upgrade-strategy eager -e '.[test]'
	.venv-newest/bin/python .ci/lockdrift.py $(LOCK)
	.venv-newest/bin/python -m pytest -p no:cacheprovider \
	    -k "$(NEWEST_SELECT)" $(NEWEST_TESTS) \
	    || { .venv-newest/bin/python .ci/lockdrift.py --failed $(LOCK); \
	         exit 1; }

# A smoke slice on another interpreter: make test-python PYTHON=python3.13
test-python:
	rm -rf .venv-$(notdir $(PYTHON))
	$(PYTHON) -m venv .venv-$(notdir $(PYTHON))
	.venv-$(notdir $(PYTHON))/bin/python -m pip install -qq \
	    --require-hashes -r $(LOCK)
	.venv-$(notdir $(PYTHON))/bin/python -m pip install -qq --no-deps -e .
	.venv-$(notdir $(PYTHON))/bin/python -m pytest -p no:cacheprovider \
	    $(SMOKE_TESTS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check psftp_shell tests bench man
	$(PY) -m mypy
	$(MAKE) --no-print-directory lint-imports

# The layers (.importlinter): a lower package importing a higher one, a
# cycle, or rich/prompt_toolkit below the front ends fails here.
lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports --no-logo --no-cache .importlinter

man: $(STAMP)
	$(PY) man/gen_manpage.py > man/psftp-shell.1.tmp
	mv man/psftp-shell.1.tmp man/psftp-shell.1

check-man: $(STAMP)
	$(PY) man/gen_manpage.py | cmp -s - man/psftp-shell.1 || \
	    { echo "man/psftp-shell.1 is stale: run make man"; exit 1; }

demo: $(STAMP)
	@$(PY) -m psftp_shell.devserver demo

# A private virtualenv under the user's data directory, pipx-style, with
# the command linked into ~/.local/bin (Debian refuses system-wide pip).
install:
	$(PYTHON) -m venv "$(DATA_HOME)/psftp-shell/venv"
	"$(DATA_HOME)/psftp-shell/venv/bin/python" -m pip install -qq .
	mkdir -p "$(BIN_HOME)"
	ln -sf "$(DATA_HOME)/psftp-shell/venv/bin/psftp-shell" \
	    "$(BIN_HOME)/psftp-shell"
	@$(MAKE) --no-print-directory install-man
	@echo "installed $(BIN_HOME)/psftp-shell"

# The man page where man looks for a user's pages: ~/.local/share/man,
# found through ~/.local/bin on PATH (man's own rule).
install-man:
	mkdir -p "$(MAN_HOME)/man1"
	cp man/psftp-shell.1 "$(MAN_HOME)/man1/psftp-shell.1"
	chmod 644 "$(MAN_HOME)/man1/psftp-shell.1"

uninstall:
	rm -rf "$(DATA_HOME)/psftp-shell/venv" "$(BIN_HOME)/psftp-shell" \
	    "$(MAN_HOME)/man1/psftp-shell.1"

bench: $(STAMP)
	$(PY) -m pip install -qq -e '.[bench]'
	$(PY) -m bench quick

bench-full: $(STAMP)
	$(PY) -m pip install -qq -e '.[bench]'
	$(PY) -m bench full

bench-cpu: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench cpu

clean:
	rm -rf $(VENV) .venv-* build dist *.egg-info .pytest_cache .mypy_cache

# The randomized fault campaign (tests/campaign.py): every transfer ends.
TRIALS ?= 300
SEED ?= 1
.PHONY: campaign
campaign: $(STAMP)
	$(PY) -m tests.campaign --trials $(TRIALS) --seed $(SEED) \
	    $(if $(STREAMS),--streams $(STREAMS)) -v
