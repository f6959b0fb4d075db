# Two commands do all set-up: `make dev` serves the API locally, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON313 := $(shell command -v python3.13 2>/dev/null)
export AWS_DEFAULT_REGION ?= eu-west-1
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: dev test install lint template-checks unit build bench clean screenshots redrive smoke

$(VENV)/.installed: requirements-dev.txt
	@if [ -z "$(PYTHON313)" ]; then \
	  echo "python3.13 is needed: install it (pyenv install 3.13, or your OS's python3.13 package) and retry."; \
	  exit 1; fi
	@echo "Installing the development environment into $(VENV) (the first time: a few minutes)..."
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@echo "Installed."
	@touch $@

# checkov pins boto3, packaging and networkx below what sam, cfn-lint and moto need: it gets a venv of its own.
CHECKOV_VENV := $(VENV)/checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.txt | $(VENV)/.installed
	$(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $@

install: $(VENV)/.installed $(CHECKOV_VENV)/.installed

dev: $(VENV)/.installed
	$(PY) -m devserver

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# checkov's skipped checks are named in template.yaml, each with its reason (Metadata: checkov: skip).
template-checks: install
	sam validate --lint
	cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
	sam build --no-cached

unit: install
	$(PY) -m pytest tests

test: install lint template-checks
	$(PY) -m pytest tests -n 2

build: install
	sam build

# Retake docs/screenshots/*.png with the browser tests (needs chromium and chromium-driver).
screenshots: install
	REFERRALS_SCREENSHOTS=1 $(PY) -m pytest tests/browser/test_story.py

bench: install
	$(PY) -m bench

# Dead letters back to their source queue on AWS (docs/faults.md, "Delivery"): give each queue's URL (the stack's
# outputs, e.g. OrderEventsDeadLetterQueueUrl and OrderEventsQueueUrl), ARN or deployed name, with AWS credentials
# and AWS_DEFAULT_REGION set to the stack's region. MOVE_TASK=1 has SQS move them (StartMessageMoveTask).
# Against `make dev`, point it at the stand-in's AWS endpoint: AWS_ENDPOINT_URL=http://127.0.0.1:4001 with
# AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing (docs/local.md, "sam local invoke against make dev").
redrive: $(VENV)/.installed
	@if [ -z "$(DLQ)" ] || [ -z "$(QUEUE)" ]; then \
	  echo "usage: make redrive DLQ=<dead-letter queue: URL, ARN or name> QUEUE=<its source queue> [MOVE_TASK=1]"; \
	  exit 2; fi
	$(PY) -m devserver.redrive '$(DLQ)' '$(QUEUE)' $(if $(filter 1 yes true,$(MOVE_TASK)),--move-task)

# The README's story, the first thing to run after a deploy (docs/deploy.md, "The first smoke test"): against a
# deployed stack with URL=<GraphQLUrl> and SMOKE_API_KEY, SMOKE_TOKEN_A, SMOKE_TOKEN_B in the environment (two
# Cognito users' ID tokens; never on the command line), or with LOCAL=<base URL> against `make dev`.
smoke:
	@python3 -m tests.smoke $(if $(LOCAL),--local '$(LOCAL)',--url '$(URL)')

clean:
	rm -rf $(VENV) .aws-sam
