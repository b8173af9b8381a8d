# Two entry points (see README): `make demo` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Serving needs only the package; the tests add the dev extra (linters, browser driver).
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest services browser image-tools bench clean docs-assets

$(RUNTIME_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $@

# One pip run for the tests: the dev extra brings the runtime's dependencies too.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[dev]'
	touch $(RUNTIME_STAMP) $@

demo: $(RUNTIME_STAMP)
	$(BIN)/python -m agentflow_cli.demo

services:
	bash .ci/services

# Headless Chromium for the browser tests: Debian's package, never a browser download.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# The image tests build and boot the generated Dockerfiles without a Docker daemon.
image-tools:
	command -v buildah >/dev/null && command -v debootstrap >/dev/null \
	  || (apt-get update -qq && apt-get install -y -qq buildah debootstrap)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) services browser image-tools
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP) services image-tools
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v hyperfine >/dev/null || (apt-get update -qq && apt-get install -y -qq hyperfine)
	$(BIN)/python bench/graph_overhead.py
	$(BIN)/python bench/http_bench.py
	$(BIN)/python bench/pg_storage.py
	$(BIN)/python bench/thread_search.py
	$(BIN)/python bench/resumable_bench.py
	$(BIN)/python bench/cli_help.py
	$(BIN)/python bench/ratelimit_bench.py
	$(BIN)/python bench/tracing_bench.py
	$(BIN)/python bench/capacity.py
	$(BIN)/python bench/langgraph_bench.py
	$(BIN)/python bench/image_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

SWAGGER_UI_VERSION ?= 5.36.0
REDOC_VERSION ?= 2.5.4
DOCS_ASSETS := runtime/agentflow/runtime/docs_assets
DOCS_TMP := .docs-assets.tmp
REDOC_LOGO := https://cdn.redoc.ly/redoc/logo-mini.svg
EMPTY_SVG := data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E
# Refresh the vendored Swagger UI and ReDoc from npm and rewrite docs_assets/VERSIONS.md.
# ReDoc's footer logo comes from its CDN (no option turns it off): an empty SVG stands in.
docs-assets:
	rm -rf $(DOCS_TMP) && mkdir -p $(DOCS_TMP)/s $(DOCS_TMP)/r
	cd $(DOCS_TMP) && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) redoc@$(REDOC_VERSION)
	tar xzf $(DOCS_TMP)/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz -C $(DOCS_TMP)/s --strip-components=1
	tar xzf $(DOCS_TMP)/redoc-$(REDOC_VERSION).tgz -C $(DOCS_TMP)/r --strip-components=1
	cd $(DOCS_TMP)/s && cp swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css $(CURDIR)/$(DOCS_ASSETS)/ \
	  && cp LICENSE $(CURDIR)/$(DOCS_ASSETS)/swagger-ui-LICENSE.txt && cp NOTICE $(CURDIR)/$(DOCS_ASSETS)/swagger-ui-NOTICE.txt
	cd $(DOCS_TMP)/r && cp bundles/redoc.standalone.js.LICENSE.txt $(CURDIR)/$(DOCS_ASSETS)/ \
	  && cp LICENSE $(CURDIR)/$(DOCS_ASSETS)/redoc-LICENSE.txt \
	  && test "$$(grep -o '$(REDOC_LOGO)' bundles/redoc.standalone.js | wc -l)" = 1 \
	  && sed 's|$(REDOC_LOGO)|$(EMPTY_SVG)|' bundles/redoc.standalone.js > $(CURDIR)/$(DOCS_ASSETS)/redoc.standalone.js
	{ printf '# Vendored API documentation UIs\n\nThe stock Swagger UI (/docs) and ReDoc (/redoc), copied from their npm packages by\n`make docs-assets`; the two *-init.js files are ours. Never edit the vendored\nfiles: change the versions in the Makefile and run the target again (also after\nediting an *-init.js: it rewrites the sha256 list below, which tests check).\n\n'; \
	  printf 'One change: redoc.standalone.js shows a footer logo from\n%s\nand has no option to turn it off, so the target replaces that URL by an empty\ndata: SVG (sha256 of the npm original: %s).\n\n' '$(REDOC_LOGO)' $$(sha256sum $(DOCS_TMP)/r/bundles/redoc.standalone.js | cut -d' ' -f1); \
	  printf '| file | from | sha256 |\n|---|---|---|\n'; \
	  cd $(DOCS_ASSETS) && for f in $$(LC_ALL=C ls | grep -vx VERSIONS.md); do case $$f in \
	    *-init.js) src=agentflow;; redoc.standalone.js) src="redoc@$(REDOC_VERSION), logo URL replaced";; \
	    swagger-ui*) src=swagger-ui-dist@$(SWAGGER_UI_VERSION);; redoc*) src=redoc@$(REDOC_VERSION);; *) src=unknown;; esac; \
	    printf '| %s | %s | %s |\n' $$f "$$src" $$(sha256sum $$f | cut -d' ' -f1); done; } > $(DOCS_ASSETS)/VERSIONS.md
	rm -rf $(DOCS_TMP)
