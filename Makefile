# Carnet — the entry points. `make run` starts the product on embedded defaults; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run HOST=0.0.0.0 PORT=8080`: where the development server listens. Links in e-mails and letters follow
# (CARNET_PUBLIC_URL, unless set in the environment: e.g. the address other machines reach when HOST=0.0.0.0).
HOST ?= 127.0.0.1
PORT ?= 8000
CARNET_PUBLIC_URL ?= http://$(HOST):$(PORT)

.PHONY: run test test-citus lint typecheck format install system-deps migrate seed worker beat messages check-deploy compose-config bench-quick clean api-schema api-schema-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/pip install --quiet -e . --group dev
	touch $(STAMP)

install: $(STAMP)

# WeasyPrint needs Debian's libharfbuzz-subset0 to be fast (43 ms instead of ~240 ms a letter).
system-deps:
	@if ldconfig -p 2>/dev/null | grep -q libharfbuzz-subset.so; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq libharfbuzz-subset0 >/dev/null || (apt-get update -qq && apt-get install -y -qq libharfbuzz-subset0); \
	else echo "Note: install Debian's libharfbuzz-subset0 (sudo apt-get install libharfbuzz-subset0) for fast letters."; fi

migrate: install
	CARNET_DEBUG=1 $(BIN)/python manage.py migrate --noinput

seed: migrate
	CARNET_DEBUG=1 $(BIN)/python manage.py seed_demo

# Web server, a Celery worker and its beat scheduler (a process of its own: killing a worker never leaves an
# orphan scheduler behind, see docs/operations.md) on SQLite, a file-system broker and a file mailbox.
run: system-deps seed
	@echo "Carnet: http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/, mailbox: var/mail/)"
	@echo "Links in notices: $(CARNET_PUBLIC_URL)/"
	@echo "Worker log: var/worker.log — try 'CARNET_DEBUG=1 $(BIN)/python manage.py demo_consultation' for a notice."
	@CARNET_DEBUG=1 CARNET_PUBLIC_URL='$(CARNET_PUBLIC_URL)' $(BIN)/celery -A config worker --loglevel=WARNING \
		--concurrency=2 >var/worker.log 2>&1 & worker=$$!; \
	CARNET_DEBUG=1 CARNET_PUBLIC_URL='$(CARNET_PUBLIC_URL)' $(BIN)/celery -A config beat --loglevel=WARNING \
		--schedule=var/celerybeat-schedule >var/beat.log 2>&1 & beat=$$!; \
	trap 'kill $$worker $$beat 2>/dev/null' EXIT INT TERM; \
	CARNET_DEBUG=1 CARNET_PUBLIC_URL='$(CARNET_PUBLIC_URL)' $(BIN)/python manage.py runserver $(HOST):$(PORT)

# A worker alone; run one `make beat` beside it (never two: see docs/operations.md).
worker: install
	CARNET_DEBUG=1 $(BIN)/celery -A config worker --loglevel=INFO

beat: install
	CARNET_DEBUG=1 $(BIN)/celery -A config beat --loglevel=INFO --schedule=var/celerybeat-schedule

# The whole suite. With DATABASE_URL / REDIS_URL set it runs on PostgreSQL and Redis.
test: install tests/js/node_modules/axe-core/axe.min.js
	$(BIN)/python -m pytest

# The suite's per-patient paths on a local Citus cluster (a coordinator and two workers, .ci/citus-cluster.sh;
# Citus itself: docs/scaling.md). The test database is built on every node and laid out by citus_distribute.
CITUS_URL ?= postgres://postgres@127.0.0.1:5433/carnet_citus
CITUS_TESTS ?= tests/test_citus_layout.py tests/test_citus_cluster.py tests/test_citus_routing.py \
	tests/test_access_contract.py tests/test_access_rules.py tests/test_access_admin.py tests/test_access_queries.py \
	tests/test_access_property.py tests/test_trail.py tests/test_api_scopes.py tests/test_api_tokens.py \
	tests/test_api_patient.py tests/test_api_practitioner.py tests/test_outbox_channel.py \
	tests/test_notifications_delivery.py tests/test_notifications_batch.py tests/test_notifications_worker.py \
	tests/test_enrolment.py tests/test_lifecycle.py tests/test_api_schema.py tests/test_api_listing.py \
	tests/test_fhir_api.py tests/test_fhir_client.py tests/test_fhir_formats.py tests/test_fhir_listing.py \
	tests/test_fhir_mhd.py tests/test_fhir_search.py
test-citus: install
	.ci/citus-cluster.sh start
	DATABASE_URL=$(CITUS_URL) CARNET_CITUS=1 $(BIN)/python -m pytest $(CITUS_TESTS)

# axe-core, injected into pages by the accessibility browser tests (pinned in tests/js/package-lock.json).
tests/js/node_modules/axe-core/axe.min.js: tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	CARNET_DEBUG=1 DATABASE_URL=sqlite:///:memory: $(BIN)/python manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory api-schema-check

# mypy with django-stubs and the DRF stubs on the apps ([tool.mypy] in pyproject.toml); the Django plugin
# imports config.settings, hence the same environment as the migrations check.
typecheck: install
	CARNET_DEBUG=1 DATABASE_URL=sqlite:///:memory: $(BIN)/mypy

# The OpenAPI description in docs/openapi.yaml: regenerate it, or check it has not drifted from the code.
api-schema: install
	CARNET_DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

api-schema-check: install
	mkdir -p var && CARNET_DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml
	diff -u docs/openapi.yaml var/openapi.yaml

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

messages: install
	$(BIN)/python manage.py makemessages -l en --ignore=.venv --ignore=var --ignore=tests --ignore=bench --no-obsolete
	$(BIN)/python manage.py compilemessages --ignore=.venv

check-deploy: install
	DJANGO_SECRET_KEY="$$(head -c 48 /dev/urandom | base64)$$(head -c 48 /dev/urandom | base64)" \
	CARNET_MASTER_KEY="$$($(BIN)/python -c 'import base64,os;print("k1:"+base64.b64encode(os.urandom(32)).decode())')" \
	DATABASE_URL=postgres://carnet@db.invalid/carnet ALLOWED_HOSTS=carnet.example \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

compose-config:
	DJANGO_SECRET_KEY=compose-check CARNET_MASTER_KEY=compose-check docker-compose config --quiet
	DJANGO_SECRET_KEY=compose-check CARNET_MASTER_KEY=compose-check docker-compose --profile citus config --quiet

bench-quick: install
	$(BIN)/python bench/crypto.py --mb 50
	$(BIN)/python bench/letters.py --letters 200
	$(BIN)/python bench/access.py --quick

clean:
	rm -rf var/
