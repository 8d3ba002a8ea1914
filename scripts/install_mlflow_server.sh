#!/usr/bin/env bash
# An MLflow tracking server for the experiment-tracking test (tests/integration/test_mlflow_tracking.py), in a
# virtualenv of its own: .venv-mlflow-server/ (or $1). Idempotent: does nothing when its `mlflow` runs.
#
# Why its own virtualenv: the server is the full `mlflow` package, whose releases that install here pin
# pyarrow < 26 while the project pins pyarrow 26; the project itself only needs the client (`mlflow-skinny`,
# the `mlflow` extra in pyproject.toml). The server's set is locked in scripts/mlflow_server_constraints.txt:
#   uv pip compile scripts/mlflow_server_requirements.txt --python-version 3.11 -o scripts/mlflow_server_constraints.txt
# Prints the server's `mlflow` executable on stdout (the only thing printed there; progress goes to stderr).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${1:-$REPO/.venv-mlflow-server}"
UV="${UV:-$REPO/.venv/bin/uv}"
PYTHON="${PYTHON:-python3.11}"
MLFLOW="$TARGET/bin/mlflow"

if [[ -x "$MLFLOW" ]] && "$MLFLOW" --version >/dev/null 2>&1; then
    echo "$MLFLOW"
    exit 0
fi
if [[ ! -x "$UV" ]]; then
    UV="$(command -v uv || true)"
fi
if [[ -z "$UV" ]]; then
    echo "install_mlflow_server.sh: no uv (run make install first, or set UV=/path/to/uv)" >&2
    exit 1
fi
echo "install_mlflow_server.sh: creating $TARGET" >&2
"$UV" venv --quiet --python "$PYTHON" "$TARGET" >&2
"$UV" pip install --quiet --compile-bytecode --python "$TARGET/bin/python" -r "$REPO/scripts/mlflow_server_requirements.txt" \
    -c "$REPO/scripts/mlflow_server_constraints.txt" >&2
"$MLFLOW" --version >&2
echo "$MLFLOW"
