# signal-uploader: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_TZ := America/Los_Angeles

.PHONY: install programs browser desktop postgres check test test-all demo web screenshots bench readme clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## programs: the real spreadsheet programs whose files tests/test_genuine_files.py reads
## (LibreOffice Calc and Gnumeric, from Debian's packages; skipped where apt-get cannot run)
programs:
	@command -v soffice >/dev/null && command -v ssconvert >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing LibreOffice Calc and Gnumeric (apt-get) for the genuine-file tests"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends libreoffice-calc-nogui gnumeric >/dev/null; \
	  else echo "note: LibreOffice (soffice) or Gnumeric (ssconvert) missing: their tests will be skipped"; fi; }

## browser: Debian's chromium, which the web page's tests drive with Playwright
## (never `playwright install`: its download host cannot be reached)
browser:
	@command -v chromium >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium (apt-get) for the web page's browser tests"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium >/dev/null; \
	  else echo "note: chromium missing and apt-get unavailable: the browser tests will fail"; fi; }

## desktop: a virtual screen (Xvfb) and xdotool, on which the page's launcher window is tested
desktop:
	@command -v Xvfb >/dev/null && command -v xdotool >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Xvfb and xdotool (apt-get) for the launcher window's test"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends xvfb xdotool >/dev/null; \
	  else echo "note: Xvfb or xdotool missing and apt-get unavailable: the launcher window's test will fail"; fi; }

## postgres: Debian's PostgreSQL server, for the tests of the shared journal (--journal postgresql://...);
## the tests start a throwaway cluster of their own in a temporary folder and remove it afterwards
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing PostgreSQL (apt-get) for the shared journal's tests"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends postgresql >/dev/null; \
	  else echo "note: PostgreSQL missing and apt-get unavailable: the shared journal's tests will be skipped"; fi; }

## check: the linter and the formatter (ruff) over the whole tree and the type checker (mypy) over the library;
## settings in pyproject.toml (`ruff format .` formats)
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: the linter, then the default suite (long fault-injection runs are marked slow and left out)
test: check programs browser desktop postgres
	$(BIN)/python -m pytest -m "not slow" --durations=10

## test-all: everything, slow runs included
test-all: install programs browser desktop postgres
	$(BIN)/python -m pytest

## demo: the bundled sample CSV and XLSX uploaded to the embedded emulator, then the CSV again
## (`signal-uploader demo`, which a plain install has too)
demo: install
	@rm -rf .demo
	$(BIN)/signal-uploader demo --folder .demo

## web: the web page against the emulator; choose a file from sample_files/ on the page (Ctrl-C stops both)
web: install
	@mkdir -p .demo
	@set -u; \
	$(BIN)/signal-uploader emulator --port 0 --ready-file .demo/web-emulator > .demo/web-emulator.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 100); do [ -s .demo/web-emulator ] && break; sleep 0.1; done; \
	url=$$(cat .demo/web-emulator); echo "emulator listening on $$url"; \
	echo "sample files to choose on the page: $$(pwd)/sample_files (signals.xlsx, signals.csv; timezone $(DEMO_TZ))"; \
	INVOCA_API_TOKEN=demo-token $(BIN)/signal-uploader serve --port $${PORT:-8765} --base-url $$url \
	  --state-dir .demo/state $${OPEN:+--open}

## screenshots: run the browser tests, keeping each step's screenshot in tests/screenshots/ (for the README)
screenshots: install browser
	SIGNAL_UPLOADER_SCREENSHOTS=1 $(BIN)/python -m pytest tests/test_web.py tests/test_web_importer.py -q -k "every_step or cancel or recording_toggle"

## readme: regenerate the README's table of APIs (from uploader/targets) and its command reference (from the CLI)
readme: install
	$(BIN)/python -c "from uploader.targets import update_readme; print('README.md: APIs updated' if update_readme('README.md') else 'README.md: APIs up to date')"
	$(BIN)/python -c "from uploader.cli import update_readme_commands as u; print('README.md: commands updated' if u('README.md') else 'README.md: commands up to date')"

bench: install browser postgres
	$(BIN)/python bench/run.py
	$(BIN)/python bench/workbooks.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/watch.py
	$(BIN)/python bench/turns.py
	$(BIN)/python bench/plan.py
	$(BIN)/python bench/journal.py

clean:
	rm -rf $(VENV) .demo .pytest_cache build *.egg-info sample_files/*.results.*
