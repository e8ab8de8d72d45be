# The two commands of the README. Both install what they need first (idempotent).
.PHONY: setup demo test lint

setup:
	bash .ci/setup.sh

demo: setup
	.venv/bin/bahfs demo --out demo

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check . && .venv/bin/mypy
