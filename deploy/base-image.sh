#!/usr/bin/env bash
# Build the base image locally, for hosts that cannot pull one: a Debian bookworm root file
# system from debootstrap (Python 3.11 from Debian), tagged as the image the Dockerfiles start
# from. Needs root, debootstrap and podman (or docker); reaches only the Debian mirror.
#   CA_BUNDLE    CA certificates to trust inside builds (default: this host's bundle)
#   BASE_IMAGE   tag to give it (default: docker.io/library/python:3.11-slim)
#   MIRROR       Debian mirror (default: http://deb.debian.org/debian)
set -euo pipefail

CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
BASE_IMAGE=${BASE_IMAGE:-docker.io/library/python:3.11-slim}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOTFS_IMAGE=localhost/tabml-rootfs:bookworm
ENGINE=${CONTAINER_ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
here=$(cd "$(dirname "$0")" && pwd)

if "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "$BASE_IMAGE is already here (remove it to rebuild)."
  exit 0
fi
[ -r "$CA_BUNDLE" ] || { echo "ERROR: CA bundle '$CA_BUNDLE' is not readable." >&2; exit 1; }
command -v debootstrap >/dev/null || {
  echo "ERROR: debootstrap is missing (apt-get install debootstrap)." >&2; exit 1; }

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
  bookworm "$rootfs" "$MIRROR"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | "$ENGINE" import - "$ROOTFS_IMAGE"
"$ENGINE" build --network=host --secret "id=ca,src=$CA_BUNDLE" \
  --build-arg "ROOTFS=$ROOTFS_IMAGE" -f "$here/base.Containerfile" -t "$BASE_IMAGE" "$here"
echo "Built $BASE_IMAGE from Debian bookworm ($("$ENGINE" image inspect "$BASE_IMAGE" --format '{{.Size}}') bytes)."
