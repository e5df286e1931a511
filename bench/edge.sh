#!/usr/bin/env bash
# Benchmarks berth's edge against nginx and caddy as plain reverse proxies of
# the same 1 KiB backend, with wrk over HTTP and HTTPS, with h2load over
# HTTP/2, uncached and for cache hits, and prints a markdown table. Installs
# Debian's nginx, caddy, wrk and nghttp2-client (h2load) when missing.
#
#   bash bench/edge.sh [-d 10s] [-c 64] [-t 2]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for bin in nginx caddy wrk; do
	command -v "$bin" >/dev/null || missing+=("$bin")
done
command -v h2load >/dev/null || missing+=(nghttp2-client)
if ((${#missing[@]})); then
	echo "installing ${missing[*]}..." >&2
	sudo=""
	[[ $(id -u) == 0 ]] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/edge-bench" ./bench/edge
"$bin/edge-bench" "$@"
