# Grid Atlas: `make run` serves the map on the demo data; `make test` runs the whole suite.
# Both set up .venv (and the offline front-end files) when needed; `make test` also installs
# the Debian packages the suite needs (Chromium, CJK fonts, PostgreSQL with PostGIS).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   := $(or $(GRIDATLAS_DATA_DIR),data)
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test demo bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

include web/assets/assets.mk

# The demo data set is built once; delete $(DATA)/demo (or run `make demo`) to rebuild it.
$(DATA)/demo/manifest.json: | $(BIN)/.installed
	$(BIN)/python -m geo demo

demo: $(BIN)/.installed
	$(BIN)/python -m geo demo

run: $(BIN)/.installed web/assets/node_modules/.installed $(DATA)/demo/manifest.json
	@# No default password: the first run creates an admin and prints its one-time password.
	@$(BIN)/python -m geo users ensure-demo-admin
	@echo "Grid Atlas: http://$(HOST):$(PORT)/"
	$(BIN)/granian --interface wsgi --host $(HOST) --port $(PORT) --workers 2 --factory web:create_app

# Both cores; the demo is built once per run and shared by the two workers (tests/conftest.py).
test: $(BIN)/.installed web/assets/node_modules/.installed
	@sh scripts/system-packages.sh
	$(BIN)/python -m pytest -q -n 2 --dist load --durations=15

bench: $(BIN)/.installed
	$(BIN)/python -m geo bench --scale 1

clean:
	rm -rf $(VENV) web/assets/node_modules
