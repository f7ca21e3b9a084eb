# The two commands of the README: `make run` (install, start the gateway on its embedded default,
# show it answering) and `make test` (install tox, run the suite compiled and pure, lint, mypy).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test latest lock install bench clean

$(BIN)/tillgate: pyproject.toml setup.py constraints.txt $(wildcard ext/*.pyx)
	@# tox 4 writes a one-line .venv *file* naming its env (an editor hint); make a real one here
	@if [ -f $(VENV) ]; then rm -f $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt --upgrade pip
	@# setuptools tells every editable install to mind same-named folders, as a UserWarning that
	@# new pips print in the middle of `make run`: nothing to act on here, so filtered by its text
	PYTHONWARNINGS="ignore:Editable installation:UserWarning" \
	    $(BIN)/pip install -q -c constraints.txt -e '.[test]'

install: $(BIN)/tillgate

run: install
	PATH=$(abspath $(BIN)):$$PATH bash scripts/run-demo.sh

test:
	$(PYTHON) -m pip install -q -c constraints.txt tox
	$(PYTHON) -m tox -e py,pure,lint,type

bench:
	$(PYTHON) -m pip install -q -c constraints.txt tox
	$(PYTHON) -m tox -e bench

latest:   # the suite against the newest releases, not the lock (README, "Dependencies")
	$(PYTHON) -m pip install -q -c constraints.txt tox
	$(PYTHON) -m tox -e latest

lock:     # rewrite constraints.txt from the newest releases; review the diff, then make test
	bash scripts/lock-deps.sh

clean:
	rm -rf build $(VENV) .tox *.egg-info protocols/*.so protocols/_*_c.c
