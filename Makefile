# medigan hub: one entry point for running and testing on a fresh machine.
# `make run` brings the hub up with its demo catalogue on the embedded default;
# `make test` runs every test suite and the linters; `make test-fast` is the quick lane of unit
# tests (no integration walk, no training runs, no shared data sets).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
NODJANGO_VENV ?= .venv-nodjango
REFERENCE_VENV ?= .venv-reference
BIN := $(VENV)/bin
# The CPU build that lies on disk here; elsewhere set TORCH_SPEC (e.g. "torch>=2.1,<3").
TORCH_SPEC ?= torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Branch coverage of every pytest run made here ([tool.coverage] in pyproject.toml), its report last.
PYTEST_COV ?= --cov --cov-branch --cov-report=term
# What the fast lane leaves out: tests that start processes or services, and the shared data sets.
FAST_MARKERS ?= not integration and not shared_data

.PHONY: run test install sandbox-tools test-tools lint typecheck test-python test-fast \
	test-nodjango test-reference clean

# Debian packages the hub needs beside Python: installed when root, else a clear instruction.
define apt_require
	@command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y --no-install-recommends $(2) >/dev/null 2>&1 || \
	    { apt-get update >/dev/null && apt-get install -y --no-install-recommends $(2) >/dev/null; }; \
	  else echo "$(3)" >&2; exit 1; fi; }
endef

$(BIN)/.installed: pyproject.toml catalog/pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ./catalog -e "./client[formats]" -e ".[dev]"
	touch $@

install: $(BIN)/.installed

# The sandbox that runs contributed code: bubblewrap, and setpriv (util-linux) for root workers.
sandbox-tools:
	$(call apt_require,bwrap,bubblewrap,medigan hub isolates contributed code with bubblewrap: \
	install it (Debian/Ubuntu: sudo apt-get install bubblewrap). See docs/security.md.)
	$(call apt_require,setpriv,util-linux,setpriv is missing: sudo apt-get install util-linux)

# What the test suite needs beside the sandbox: setfacl runs the hub as an unprivileged user.
test-tools: sandbox-tools
	$(call apt_require,setfacl,acl,the security tests need setfacl: sudo apt-get install acl)

# The terminal gets the URL, the demo accounts and what to try; the details go to var/log/
# (setup.log: migrate, collectstatic and the seed; a failing step prints its end).
SETUP_LOG := $(or $(MEDIGAN_DATA_DIR),var)/log/setup.log
run: install sandbox-tools
	@mkdir -p $(dir $(SETUP_LOG)) && echo "== make run $$(date -u +%FT%TZ)" >> $(SETUP_LOG)
	@echo "Preparing the database and static files (details: $(SETUP_LOG))..."
	@$(BIN)/python manage.py migrate --noinput >> $(SETUP_LOG) 2>&1 || \
	  { tail -n 30 $(SETUP_LOG); exit 1; }
	@$(BIN)/python manage.py collectstatic --noinput --verbosity 0 >> $(SETUP_LOG) 2>&1 || \
	  { tail -n 30 $(SETUP_LOG); exit 1; }
	@$(BIN)/python manage.py seed_demo --log $(SETUP_LOG) 2>> $(SETUP_LOG) || \
	  { tail -n 30 $(SETUP_LOG); exit 1; }
	@HOST=$(HOST) PORT=$(PORT) VENV=$(VENV) deploy/run-embedded.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy --strict catalog/src client/src evaluation zoo
	$(BIN)/mypy --config-file hub/mypy.ini hub

test-python: install test-tools
	$(BIN)/pytest $(PYTEST_COV) $(PYTEST_ARGS)

# The unit tests alone, in a few minutes: what to run while working.
# The unit tests share nothing but loopback servers on free ports, so they run on every core.
test-fast: install test-tools
	$(BIN)/pytest -m "$(FAST_MARKERS)" -n auto $(PYTEST_COV) $(PYTEST_ARGS)

# The catalog and the client must work where Django is not installed.
$(NODJANGO_VENV)/.installed: catalog/pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(NODJANGO_VENV)
	$(NODJANGO_VENV)/bin/pip install --quiet --upgrade pip
	$(NODJANGO_VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(NODJANGO_VENV)/bin/pip install --quiet -e "./catalog[test]" -e "./client[test]"
	touch $@

test-nodjango: $(NODJANGO_VENV)/.installed
	$(NODJANGO_VENV)/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('django') is not None)"
	cd catalog && PYTHONPATH=../tests ../$(NODJANGO_VENV)/bin/python -m pytest -p no:cacheprovider \
		-p socket_guard -c /dev/null --rootdir . tests -q
	cd client && PYTHONPATH=../tests ../$(NODJANGO_VENV)/bin/python -m pytest -p no:cacheprovider \
		-p socket_guard -c /dev/null --rootdir . tests -q

# The reference FID implementation (pytorch-fid) needs torchvision, which does not import beside
# the project's CPU torch; the equality tests run in their own environment, against the tree.
$(REFERENCE_VENV)/.installed:
	$(PYTHON) -m venv $(REFERENCE_VENV)
	$(REFERENCE_VENV)/bin/pip install --quiet --upgrade pip
	$(REFERENCE_VENV)/bin/pip install --quiet torch==2.14.1 torchvision==0.29.1 pytorch-fid==0.3.0 \
		numpy scipy pillow safetensors pytest
	touch $@

# medigan 1.0.0 itself, for the equality tests of the client's Generators: its search path needs
# only requests beside what the client brings (--no-deps leaves out its GUI and GitHub packages).
$(REFERENCE_VENV)/.medigan-installed: $(REFERENCE_VENV)/.installed catalog/pyproject.toml client/pyproject.toml
	$(REFERENCE_VENV)/bin/pip install --quiet -e ./catalog -e ./client requests
	$(REFERENCE_VENV)/bin/pip install --quiet --no-deps medigan==1.0.0
	touch $@

test-reference: $(REFERENCE_VENV)/.installed $(REFERENCE_VENV)/.medigan-installed
	PYTHONPATH=. $(REFERENCE_VENV)/bin/python -m pytest -p no:cacheprovider -c /dev/null \
		--rootdir . --confcutdir tests/evaluation/reference tests/evaluation/reference -q
	$(REFERENCE_VENV)/bin/python -m pytest -p no:cacheprovider -c /dev/null \
		--rootdir . client/tests/compat/reference -q

test: lint typecheck test-python test-nodjango test-reference

clean:
	rm -rf $(VENV) $(NODJANGO_VENV) $(REFERENCE_VENV) var .mypy_cache .ruff_cache .pytest_cache
