# signal-uploader: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_TZ := America/Los_Angeles

.PHONY: install programs browser check test test-all demo web screenshots bench readme clean

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

## check: the linter and the formatter (ruff) over the whole tree and the type checker (mypy) over the library;
## settings in pyproject.toml (`ruff format .` formats)
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: the linter, then the default suite (long fault-injection runs are marked slow and left out)
test: check programs browser
	$(BIN)/python -m pytest -m "not slow" --durations=10

## test-all: everything, slow runs included
test-all: install programs browser
	$(BIN)/python -m pytest

## demo: start the emulator, upload the sample CSV and XLSX, print summaries, stop it
demo: install
	@rm -rf .demo && mkdir -p .demo
	@set -u; \
	$(BIN)/signal-uploader emulator --port 0 --ready-file .demo/url > .demo/emulator.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT; \
	for i in $$(seq 100); do [ -s .demo/url ] && break; sleep 0.1; done; \
	[ -s .demo/url ] || { echo "the emulator did not start:"; cat .demo/emulator.log; exit 1; }; \
	url=$$(cat .demo/url); echo "emulator listening on $$url"; \
	for file in sample_files/signals.csv sample_files/signals.xlsx sample_files/signals.csv; do \
	  echo; echo "\$$ signal-uploader upload $$file --timezone $(DEMO_TZ) --base-url $$url"; \
	  INVOCA_API_TOKEN=demo-token $(BIN)/signal-uploader upload $$file --timezone $(DEMO_TZ) \
	    --base-url $$url --no-progress --state-dir .demo/state; \
	  code=$$?; echo "(exit code $$code: 0 = all rows sent, 1 = some rows invalid or failed, as in these samples)"; \
	  [ $$code -le 1 ] || exit $$code; \
	done; \
	echo; echo "The second upload of signals.csv skipped the rows the first one confirmed (journal in .demo/state)."; \
	echo; echo "The same on a web page: make web  (it prints the page's address; open it in a browser)"

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
	SIGNAL_UPLOADER_SCREENSHOTS=1 $(BIN)/python -m pytest tests/test_web.py -q

## readme: regenerate the README's table of APIs (from uploader/targets) and its command reference (from the CLI)
readme: install
	$(BIN)/python -c "from uploader.targets import update_readme; print('README.md: APIs updated' if update_readme('README.md') else 'README.md: APIs up to date')"
	$(BIN)/python -c "from uploader.cli import update_readme_commands as u; print('README.md: commands updated' if u('README.md') else 'README.md: commands up to date')"

bench: install browser
	$(BIN)/python bench/run.py
	$(BIN)/python bench/workbooks.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/watch.py
	$(BIN)/python bench/turns.py

clean:
	rm -rf $(VENV) .demo .pytest_cache build *.egg-info sample_files/*.results.*
