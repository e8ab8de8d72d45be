# The two commands of the README. Both install what they need first (idempotent).
.PHONY: setup demo test check lint

# the suite on every core (at most 4 workers: each loads its own models); each test
# file runs on one worker, longest first (tests/conftest.py); the slowest tests last
PARALLEL = -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

setup:
	bash .ci/setup.sh

demo: setup
	.venv/bin/bahfs demo --out demo

test: setup
	.venv/bin/python -m pytest $(PARALLEL) --durations=30

# the inner loop: ruff, mypy and the tests not marked slow (docs/testing.md)
check: setup
	.venv/bin/ruff check . && .venv/bin/mypy
	.venv/bin/python -m pytest $(PARALLEL) -m "not slow" --deselect tests/test_lint.py::test_tool_is_clean

lint: setup
	.venv/bin/ruff check . && .venv/bin/mypy
