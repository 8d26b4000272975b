# signal-uploader: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_TZ := America/Los_Angeles

.PHONY: install programs test test-all demo bench readme clean

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

## test: the default suite (long fault-injection runs are marked slow and left out)
test: install programs
	$(BIN)/python -m pytest -m "not slow"

## test-all: everything, slow runs included
test-all: install programs
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
	echo; echo "The second upload of signals.csv skipped the rows the first one confirmed (journal in .demo/state)."

## readme: regenerate the README's table of APIs from the registry (uploader/targets)
readme: install
	$(BIN)/python -c "from uploader.targets import update_readme; print('README.md updated' if update_readme('README.md') else 'README.md up to date')"

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/workbooks.py

clean:
	rm -rf $(VENV) .demo .pytest_cache build *.egg-info sample_files/*.results.*
