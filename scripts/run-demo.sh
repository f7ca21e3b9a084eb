#!/usr/bin/env bash
# `make run`: start the gateway on its embedded default, show it answering, keep it running.
# The config: $TILLGATE_CONFIG, else config/tillgate.toml here, else the built-in default (the
# same, HOST-SPEC 6), so this also runs in an empty folder with tillgate installed.
set -euo pipefail
config=()
if [ -n "${TILLGATE_CONFIG:-}" ]; then config=(--config "$TILLGATE_CONFIG"); fi
tillgate serve "${config[@]}" &
gateway=$!
trap 'kill -TERM $gateway 2>/dev/null; wait $gateway' INT TERM
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8580/healthz', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 $gateway 2>/dev/null || { echo "tillgate serve exited" >&2; exit 1; }
    sleep 0.1
done
echo; echo "GET /healthz: $(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8580/healthz').read().decode().strip())")"; echo
python -m gateway.demo "${config[@]}"
echo "tillgate is running: ISO 8583 on 127.0.0.1:8583, TGL/1 on :8584, metrics on http://127.0.0.1:8580/metrics"
echo "Ctrl-C stops it."
wait $gateway
