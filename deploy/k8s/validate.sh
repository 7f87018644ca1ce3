#!/usr/bin/env bash
# Render every overlay with the serving image pinned, as `make deploy` does, and validate it
# offline: yamllint on the sources, `kubectl kustomize`, then `kubernetes-validate --strict`
# against the oldest and newest Kubernetes versions supported, and the Prometheus Operator's
# kinds against its vendored CRD schemas (schemas/, validate_crds.py). No cluster is needed.
#
#   deploy/k8s/validate.sh OUT_DIR IMAGE     (IMAGE: name:tag; writes OUT_DIR/<overlay>.yaml)
set -euo pipefail

KUBERNETES_VERSIONS=(1.31.0 1.37.0)
PLACEHOLDER=tabml-service

if [[ $# -ne 2 ]]; then
  echo "usage: $0 OUT_DIR IMAGE" >&2
  exit 2
fi
out=$1 image=$2
name=${image%:*} tag=${image##*:}
# The tag follows the last ':' after the last '/' (a registry may carry a port).
if [[ ${image##*/} != *:* || -z $tag || -z $name ]]; then
  echo "ERROR: IMAGE must be name:tag with an exact tag, got '$image'" >&2
  exit 2
fi
if [[ $tag == latest ]]; then
  echo "ERROR: IMAGE must name an exact tag, not 'latest' ('$image')" >&2
  exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
yamllint --strict -c "$here/.yamllint.yaml" "$here"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here" "$work/k8s"
mkdir -p "$out"
overlays=("$here"/overlays/*/)
for dir in "${overlays[@]}"; do
  env=$(basename "$dir")
  mkdir "$work/k8s/release-$env"
  cat >"$work/k8s/release-$env/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../overlays/$env]
images: [{name: $PLACEHOLDER, newName: "$name", newTag: "$tag"}]
YAML
  kubectl kustomize "$work/k8s/release-$env" >"$work/$env.yaml"
  if grep -Eq "image: ['\"]?$PLACEHOLDER['\"]?$" "$work/$env.yaml"; then
    echo "ERROR: $env: an image is still the placeholder '$PLACEHOLDER'" >&2
    exit 1
  fi
  args=()
  for version in "${KUBERNETES_VERSIONS[@]}"; do args+=(-k "$version"); done
  # It skips the Prometheus Operator's kinds with a warning ("Couldn't find schema"), left out
  # here: validate_crds.py checks those kinds. Any other line is shown.
  if ! found=$(kubernetes-validate --strict --quiet "${args[@]}" "$work/$env.yaml" 2>&1); then
    echo "$found" >&2
    exit 1
  fi
  grep -v "Couldn't find schema for kind \(PrometheusRule\|ServiceMonitor\) with api version monitoring.coreos.com/" <<<"$found" || true
  python "$here/validate_crds.py" "$here/schemas" "$work/$env.yaml"
  mv "$work/$env.yaml" "$out/$env.yaml"
  echo "$env: $(grep -c '^kind:' "$out/$env.yaml") resources valid -> $out/$env.yaml"
done
