#!/usr/bin/env bash
# Runs bench/aws: berth's verbs on an AWS environment against moto_server,
# a loopback registry standing in for ECR's, and the test proxy simulating
# ECS. Installs what it needs when missing, as .ci/run does: moto 5.2.1
# (pip) and Debian's docker-registry; the Docker Engine must run (the
# example image is built and pushed from it). Each run starts its own
# moto_server and registry on free loopback ports and stops them.
#
#   bash bench/aws.sh [-n 3]
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[[ $(id -u) == 0 ]] || sudo=sudo
if ! command -v docker-registry >/dev/null 2>&1; then
	echo "installing docker-registry..." >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
fi
if ! command -v moto_server >/dev/null 2>&1; then
	echo "installing moto_server (moto 5.2.1)..." >&2
	python3 -m pip install -q 'moto[server]==5.2.1' >&2
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/aws-bench" ./bench/aws
"$bin/aws-bench" "$@"
