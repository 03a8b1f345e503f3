# Grid Atlas: `make run` serves the map on the demo data; `make test` runs the whole suite.
# Both set up .venv (and the offline front-end files) when needed; `make test` also installs
# the Debian packages the suite needs (Chromium, CJK fonts, PostgreSQL with PostGIS).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   := $(or $(GRIDATLAS_DATA_DIR),data)
HOST   ?= 127.0.0.1
PORT   ?= 5000
# Scale of the demo records: 1 gives the seed's totals; `make run SCALE=0.1` builds a tenth, quicker.
SCALE  ?= $(or $(GRIDATLAS_DEMO_SCALE),1)

.PHONY: run test demo bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

include web/assets/assets.mk

# The demo data set is built once per scale (the marker names the scale it was built at, and a
# rebuild replaces the folder, marker and all); `make demo` rebuilds it.
$(DATA)/demo/.built-at-scale-$(SCALE): | $(BIN)/.installed
	$(BIN)/python -m geo demo --scale $(SCALE)
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m geo demo --scale $(SCALE)
	touch $(DATA)/demo/.built-at-scale-$(SCALE)

run: $(BIN)/.installed web/assets/node_modules/.installed $(DATA)/demo/.built-at-scale-$(SCALE)
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
