# armswatch: `make run` sets up and runs the main job; `make test` sets up and runs the tests.
# Needs only python3.11 and PyPI: uv is bootstrapped into .tools/, the locked environment into .venv/.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export UV_PYTHON_DOWNLOADS := never
export ARMSWATCH_MIRROR
PYTHON ?= python3.11
UV := .tools/bin/uv

.PHONY: run test setup clean
# setup also prepares Prefect's database (migrations) for the temporary server `armswatch` starts, unless
# PREFECT_API_URL names a server; it is quick when the database is already at the newest migration.
setup: .venv/.synced
	@.venv/bin/python -m flows.server

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==0.13.8

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# make exits 2 whenever armswatch exits non-zero; the line below names armswatch's own exit code (README: CLI).
run: setup
	@.venv/bin/armswatch run $(ARGS) || { code=$$?; echo "armswatch exited with code $$code" >&2; exit $$code; }

test: setup
	.venv/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf .venv .tools
