#!/usr/bin/env bash
# Makes sure a Docker Engine answers, installing Debian's docker.io and
# starting dockerd when none runs, and that the host tools the tests use
# (busybox-static for shell images) are present. Sourced by .ci/run and
# scripts/example.sh.
set -euo pipefail

apt_install() {
  if [ -z "${BERTH_APT_UPDATED:-}" ]; then
    apt-get update -qq
    BERTH_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "ensure-docker: installing docker.io" >&2
    apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "ensure-docker: starting dockerd" >&2
    (nohup dockerd >/tmp/dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 1
    done
  fi
  docker info >/dev/null 2>&1 || { echo "ensure-docker: dockerd did not start; see /tmp/dockerd.log" >&2; tail -20 /tmp/dockerd.log >&2; exit 1; }
fi

if [ ! -x /bin/busybox ]; then
  echo "ensure-docker: installing busybox-static" >&2
  apt_install busybox-static
fi
