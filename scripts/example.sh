#!/usr/bin/env bash
# Builds berth and the example app, starts `berth server` in the background
# (data in ./.berth-example), deploys examples/hello and prints its URL.
# Stop the daemon afterwards with: kill $(cat .berth-example/server.pid)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-docker.sh

export BERTH_DATA="${BERTH_DATA:-$PWD/.berth-example}"
export BERTH_HTTPS="${BERTH_HTTPS-}"
mkdir -p bin "$BERTH_DATA"

echo "==> building berth and the example app"
CGO_ENABLED=0 go build -o bin/berth ./cmd/berth
CGO_ENABLED=0 go build -o examples/hello/hello ./examples/hello

if ! bin/berth status >/dev/null 2>&1; then
  echo "==> starting berth server (log: $BERTH_DATA/server.log)"
  nohup bin/berth server >"$BERTH_DATA/server.log" 2>&1 &
  echo $! >"$BERTH_DATA/server.pid"
  for _ in $(seq 1 50); do
    bin/berth status >/dev/null 2>&1 && break
    sleep 0.2
  done
  bin/berth status >/dev/null || { tail -20 "$BERTH_DATA/server.log"; exit 1; }
fi

echo "==> deploying examples/hello"
bin/berth deploy -f examples/hello/berth.yaml | tee "$BERTH_DATA/deploy.out"

url=$(grep -o 'http://web\.hello\.[^ ]*' "$BERTH_DATA/deploy.out" | head -1)
echo
echo "==> the example app answers at: $url"
curl -fsS --max-time 5 "$url" || true
echo
echo "steer it from the browser: BERTH_DATA=$BERTH_DATA bin/berth ui"
echo "stop the daemon with: kill \$(cat $BERTH_DATA/server.pid)"
