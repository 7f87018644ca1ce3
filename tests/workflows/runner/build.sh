#!/usr/bin/env bash
# Build a stand-in for GitHub's ubuntu-24.04 hosted runner (`ubuntu-latest`) where no image can
# be pulled: a Debian 13 (trixie) root file system from debootstrap, then runner.Containerfile.
# It keeps the parts of the runner's contract the workflows depend on: a `runner` user with
# passwordless sudo, git, make, Node 20, a system Python that is NOT the project's 3.11
# (trixie's 3.13; ubuntu-24.04 has 3.12), an empty tool cache, and no uv. Needs root,
# debootstrap and podman; reaches only the Debian mirror.
#   RUNNER_IMAGE  tag to give it (default: localhost/tabml-runner:ubuntu-24.04); the podman store
#                 is the one CONTAINERS_STORAGE_CONF names, if set
#   INPUTS_HASH   recorded as the image label tabml.runner.inputs (the tests rebuild on change)
#   CA_BUNDLE     CA certificates to trust inside the image (default: this host's bundle)
#   MIRROR        Debian mirror (default: http://deb.debian.org/debian)
set -euo pipefail

RUNNER_IMAGE=${RUNNER_IMAGE:-localhost/tabml-runner:ubuntu-24.04}
INPUTS_HASH=${INPUTS_HASH:-unknown}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOTFS_IMAGE=${RUNNER_IMAGE%:*}-rootfs:trixie
here=$(cd "$(dirname "$0")" && pwd)
# What the workflows' make targets and the stand-in actions call, plus the shared libraries a
# prebuilt CPython (actions/python-versions' builds) links against.
PACKAGES=(
  ca-certificates sudo git make nodejs python3 python3-venv python-is-python3
  curl jq tar gzip xz-utils zstd unzip file procps
  libssl3t64 libffi8 libsqlite3-0 libbz2-1.0 liblzma5 zlib1g libreadline8t64 libncursesw6
  libgdbm6t64 libuuid1 libexpat1 tzdata docker-cli
)

[ -r "$CA_BUNDLE" ] || { echo "ERROR: CA bundle '$CA_BUNDLE' is not readable." >&2; exit 1; }
command -v debootstrap >/dev/null || {
  echo "ERROR: debootstrap is missing (apt-get install debootstrap)." >&2; exit 1; }
command -v podman >/dev/null || { echo "ERROR: podman is missing." >&2; exit 1; }

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
include=$(IFS=,; echo "${PACKAGES[*]}")
debootstrap --variant=minbase --include="$include" trixie "$rootfs" "$MIRROR"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import - "$ROOTFS_IMAGE"
podman build --network=host --pull=never --secret "id=ca,src=$CA_BUNDLE" \
  --build-arg "ROOTFS=$ROOTFS_IMAGE" --label "tabml.runner.inputs=$INPUTS_HASH" \
  -f "$here/runner.Containerfile" -t "$RUNNER_IMAGE" "$here"
podman rmi "$ROOTFS_IMAGE" >/dev/null
echo "Built $RUNNER_IMAGE from Debian trixie."
