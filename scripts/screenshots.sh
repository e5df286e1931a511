#!/usr/bin/env bash
# Writes screenshots of the web console's main pages (apps, a service with
# its graphs, tasks, edge) to docs/img/console-*.png, taken by a headless
# Chromium driven from Go (internal/controlplane's TestConsoleScreenshots)
# after a scene of two services, a deploy under traffic, tasks and an
# entrypoint; and an app's AWS environment picked in the console
# (internal/aws/awsdaemon's test, on moto). Needs Chromium (apt-get install
# chromium) and moto_server with docker-registry.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)" ]; then
  echo "screenshots: no Chromium here; install it with: apt-get install chromium" >&2
  exit 1
fi
out="${1:-docs/img}"
mkdir -p "$out"
BERTH_SCREENSHOTS="$(cd "$out" && pwd)" BERTH_REQUIRE_CHROMIUM=1 \
  go test -count=1 -run '^TestConsoleScreenshots$' ./internal/controlplane/
BERTH_SCREENSHOTS="$(cd "$out" && pwd)" BERTH_REQUIRE_CHROMIUM=1 BERTH_REQUIRE_MOTO=1 \
  go test -count=1 -run '^TestConsoleSteersAnAWSEnvironment$' ./internal/aws/awsdaemon/
ls -l "$out"/console-*.png
