# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Both install whatever is missing first (Debian packages, .venv, native build).
PY := .venv/bin/python
MODEL ?=
ARGS ?=

.PHONY: setup demo test test-all

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) -m tvm_accel demo $(MODEL) $(ARGS)

test: setup
	@$(PY) -m pytest -q

# Everything, slow end-to-end tests included.
test-all: setup
	@$(PY) -m pytest -q -m ""
