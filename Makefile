# GridCase: `make run` serves the demo county, `make test` runs every test.
# Both set everything up first on a fresh Debian machine (see README.md).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app webapp
HOST   ?= 127.0.0.1
PORT   ?= 5000
CASES  ?= 5000
WORKERS ?= 2
PYTEST_ARGS ?=
BACKUP ?= var/backup/gridcase.dump

.PHONY: run test setup setup-test setup-bench system-deps system-deps-test system-deps-bench stop bench backup restore lint clean

run: setup
	$(FLASK) db upgrade
	$(FLASK) demo load --if-empty --cases $(CASES)
	@echo "GridCase 已启动：http://$(HOST):$(PORT)/  （Ctrl-C 退出；make stop 停止内置数据库）"
	$(BIN)/gunicorn --workers $(WORKERS) --worker-class webapp.serving.BalancedThreadWorker --threads 4 \
		--bind $(HOST):$(PORT) --access-logfile - 'webapp:create_app()'

test: setup-test
	$(BIN)/pytest $(PYTEST_ARGS)

setup: system-deps $(VENV)/.installed node_modules/.installed

setup-test: system-deps-test $(VENV)/.installed node_modules/.installed

setup-bench: system-deps-bench $(VENV)/.installed node_modules/.installed

system-deps:
	@scripts/install-system-deps.sh

system-deps-test:
	@scripts/install-system-deps.sh --browser

system-deps-bench:
	@scripts/install-system-deps.sh --bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

stop:
	@if [ -x $(BIN)/flask ]; then $(FLASK) db stop; fi

bench: setup-bench
	$(BIN)/python -m bench $(BENCH_ARGS)

backup: setup
	$(FLASK) db backup $(BACKUP)

restore: setup
	$(FLASK) db restore --yes $(BACKUP)

lint: setup
	@$(BIN)/pip install --quiet -e '.[lint]'
	$(BIN)/ruff check webapp tests gis_data migrations bench
	$(BIN)/ruff format --check webapp tests gis_data migrations bench

clean: stop
	rm -rf $(VENV) node_modules var
