#!/usr/bin/env bash
# Check that the tools the local deploy and the container tests rely on answer: the container
# engine, its --init (podman's comes from the catatonit package, which podman only recommends),
# act, kubectl and promtool (the alert rules' tests). One line per missing tool, naming what to
# install; exit 1 if any is missing.
#   BASE_IMAGE   image to start with --init (default: docker.io/library/python:3.11-slim)
set -uo pipefail

BASE_IMAGE=${BASE_IMAGE:-docker.io/library/python:3.11-slim}
missing=0
fail() { echo "MISSING: $*" >&2; missing=1; }

if [ -n "${CONTAINER_ENGINE:-}" ]; then
  engine=$CONTAINER_ENGINE
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
else
  engine=podman
fi

if ! command -v "$engine" >/dev/null; then
  fail "no container engine: install podman (apt-get install podman buildah runc uidmap" \
    "fuse-overlayfs slirp4netns catatonit) or Docker."
elif ! "$engine" info >/dev/null 2>&1; then
  fail "'$engine info' fails: $("$engine" info 2>&1 | tail -n 1)"
elif ! "$engine" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  fail "image $BASE_IMAGE is not in $engine's store: run 'make base-image'."
elif ! out=$("$engine" run --rm --init --network=host "$BASE_IMAGE" true 2>&1); then
  case "$out" in
    *"init binary"*) fail "$engine cannot start containers with --init: install catatonit" \
      "(apt-get install catatonit).";;
    *) fail "'$engine run --init $BASE_IMAGE' fails: $(tail -n 1 <<<"$out")";;
  esac
fi
for tool in act kubectl; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH: run 'make setup' (uv.lock installs it)."
done
command -v act >/dev/null && { act --version >/dev/null 2>&1 || fail "act does not answer."; }
command -v kubectl >/dev/null && {
  kubectl version --client >/dev/null 2>&1 || fail "kubectl does not answer."; }

if ! command -v promtool >/dev/null; then
  fail "promtool is not on PATH: run 'make system-packages' (Debian's prometheus package)."
elif ! promtool --version >/dev/null 2>&1; then
  fail "promtool does not answer."
fi

[ "$missing" = 0 ] && echo "Tools answer: $engine (with --init), act, kubectl, promtool."
exit "$missing"
