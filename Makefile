# Voice agent: local speech-to-speech on CPU. `make run` starts everything, `make test` tests everything.
SHELL := /bin/bash
PYTHON ?= python3
VENVS := .venvs
PIP_FLAGS ?= -q --disable-pip-version-check
SERVICES := stt llm tts

-include .env
export

.PHONY: help setup run test test-services test-frontend lint talk up down logs ps build compose-config clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/:\t/'

# One virtual environment per service (their libraries may conflict) and one for the page + tools.
# Each is rebuilt when its lock file changes; the stamp marks a finished install.
$(VENVS)/%/.stamp: services/%/requirements.txt services/%/pyproject.toml services/common/pyproject.toml tests/requirements.txt
	rm -rf $(VENVS)/$*
	$(PYTHON) -m venv $(VENVS)/$*
	$(VENVS)/$*/bin/pip install $(PIP_FLAGS) -r services/$*/requirements.txt -r tests/requirements.txt
	$(VENVS)/$*/bin/pip install $(PIP_FLAGS) --no-deps -e services/common -e services/$*
	touch $@

$(VENVS)/frontend/.stamp: frontend/requirements.txt frontend/pyproject.toml services/common/pyproject.toml tests/requirements.txt requirements-dev.txt
	rm -rf $(VENVS)/frontend
	$(PYTHON) -m venv $(VENVS)/frontend
	$(VENVS)/frontend/bin/pip install $(PIP_FLAGS) -r frontend/requirements.txt -r tests/requirements.txt -r requirements-dev.txt
	$(VENVS)/frontend/bin/pip install $(PIP_FLAGS) --no-deps -e services/common -e frontend
	touch $@

setup: $(addprefix $(VENVS)/,$(addsuffix /.stamp,$(SERVICES) frontend))  ## Create every virtual environment that is missing

venv-%: $(VENVS)/%/.stamp ;
