# dialstream: `make demo` and `make test` are the two commands a user needs.
# Both create .venv and install the project on first use; nothing else is assumed
# but Python 3.11+, make and pip.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

PROTO_SRC := $(shell find protos -name '*.proto')
PROTO_GEN := $(PROTO_SRC:.proto=_pb2.py)

.PHONY: install protos demo test bench chaos clean

install: $(STAMP) $(PROTO_GEN)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "dialstream needs Python 3.11 or newer; set PYTHON=python3.X")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps 'pipecat-ai==1.14.0'  # its serializer only; its deps are in [dev]
	@touch $(STAMP)

# Generated code is a build artefact: run from the repo root so imports come out
# package-qualified (from protos.exotel.callback.v1 import callback_pb2).
protos: $(PROTO_GEN)

%_pb2.py: %.proto $(STAMP)
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. $<

demo: install
	$(VENV)/bin/dialstream demo --json-out demo-report.json

test: install
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench

# The chaos suite at full size: CHAOS_CALLS calls while the ingress, an events worker, a bot
# and Redis are SIGKILLed twice each, with API storms and event faults; prints its counts.
# (`make test` runs it with 48 calls and one kill of each.) Its logs stay in .chaos/.
CHAOS_CALLS ?= 300
chaos: install
	DIALSTREAM_CHAOS_CALLS=$(CHAOS_CALLS) $(PY) -m pytest tests/chaos -s --basetemp=.chaos $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
	find protos -name '*_pb2*.py*' -delete
