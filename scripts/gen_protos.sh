#!/usr/bin/env bash
# Generate the Python gRPC stubs from protos/ into the top-level package llm_router/v1/.
#
#   scripts/gen_protos.sh           regenerate in place
#   scripts/gen_protos.sh --check   regenerate into a temp dir and diff; exit 1 on drift
#
# Uses $PYTHON (default: python) with grpcio-tools installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
PROTOS=(protos/llm_router/v1/router.proto)
GENERATED=(router_pb2.py router_pb2.pyi router_pb2_grpc.py)

generate() {  # $1: output root
    (cd "$ROOT" && "$PYTHON" -m grpc_tools.protoc -Iprotos \
        --python_out="$1" --pyi_out="$1" --grpc_python_out="$1" "${PROTOS[@]}")
}

case "${1:-}" in
    "")
        generate .
        ;;
    --check)
        tmp="$(mktemp -d)"
        trap 'rm -rf "$tmp"' EXIT
        generate "$tmp"
        status=0
        for f in "${GENERATED[@]}"; do
            if ! diff -u "$ROOT/llm_router/v1/$f" "$tmp/llm_router/v1/$f"; then
                status=1
            fi
        done
        if [ "$status" -ne 0 ]; then
            echo "gen_protos: generated stubs are out of date; run scripts/gen_protos.sh" >&2
        fi
        exit "$status"
        ;;
    *)
        echo "usage: $0 [--check]" >&2
        exit 2
        ;;
esac
