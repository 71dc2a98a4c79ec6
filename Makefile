# The two commands of the README: `make demo` and `make test`. Each does its own set-up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
ATLAS := $(VENV)/libexec/pydb/atlas
export ATLAS_NO_UPDATE_NOTIFIER := 1
export ATLAS_NO_UPGRADE_SUGGESTIONS := 1

.PHONY: demo test install atlas system-deps up down check bench screenshots clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

$(ATLAS): tools/atlas/go.mod tools/atlas/go.sum tools/atlas/build.py
	$(PY) tools/atlas/build.py $(ATLAS)

# .venv/bin/atlas: Atlas with the URLs of atlas.hcl (pydb/atlas/atlas.sh, then pydb.atlas.launcher).
$(VENV)/bin/atlas: pydb/atlas/atlas.sh $(VENV)/.installed
	install -m 755 pydb/atlas/atlas.sh $@

atlas: $(ATLAS) $(VENV)/bin/atlas

up: install atlas
	$(VENV)/bin/pydb dev up

down:
	$(VENV)/bin/pydb dev down

demo: up
	$(VENV)/bin/atlas schema apply --env local --auto-approve
	$(VENV)/bin/pydb seed seed.yaml
	@echo
	@echo "== the schema the local database now holds:"
	@$(VENV)/bin/pydb describe
	@echo
	@echo "== a user with their projects and usage rows, loaded in one query:"
	$(VENV)/bin/pydb find users --where email=ada@example.com --with projects --with ai_usage_log
	@echo
	$(VENV)/bin/pydb dev status

# PgBouncer (Debian's package) for the tests that go through a transaction-mode pooler, and Chromium
# (Debian's package, driven by Playwright with executable_path; no browser download) for the studio's
# browser test. Installed with apt-get when run as root; otherwise a note, and those tests are skipped.
system-deps:
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing pgbouncer (apt-get)"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; \
	  else echo "note: pgbouncer is not installed; the pooler tests will be skipped (apt-get install pgbouncer)"; fi; }
	@[ -x /usr/bin/chromium ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (apt-get)"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium is not installed; the studio's browser test will be skipped (apt-get install chromium)"; fi; }

test: check atlas system-deps
	@$(VENV)/bin/pytest -n 2 -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

# ruff and mypy --strict over the library, the tests and the benchmarks (make test runs this first).
check: install
	$(VENV)/bin/ruff check pydb tests bench
	$(VENV)/bin/mypy

bench: install atlas
	$(PY) -m bench

# The screenshots of docs/studio.md, taken by the studio's browser test.
screenshots: install atlas system-deps
	$(VENV)/bin/pytest -q tests/test_studio_browser.py --screenshots docs/studio

clean:
	-$(VENV)/bin/pydb dev down
	rm -rf $(VENV) .pydb
