#!/usr/bin/env bash
# One command: create a virtualenv, install llm-router (compiling its Cython extension),
# and serve the shipped default config and model on 127.0.0.1:50051.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q "Cython>=3.0,<4" "numpy>=1.26"
.venv/bin/python -m pip install -q --no-build-isolation -e .
.venv/bin/llm-router route "Prove that the square root of 2 is irrational, step by step."
exec .venv/bin/llm-router serve --host 127.0.0.1 --port "${PORT:-50051}"
