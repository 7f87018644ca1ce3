"""The Kubernetes manifests: `make manifests` renders every overlay with the image pinned and
validates it (yamllint, kubectl kustomize, kubernetes-validate --strict); these tests then read
what it rendered. No cluster exists here, so nothing is applied."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from bentoml._internal.container.generate import BENTO_UID_GID

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy/k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
PLACEHOLDER = "tabml-service"
PORT = 3000
HEALTH = {"readinessProbe": "/readyz", "livenessProbe": "/livez"}
QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$")
SCALE = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def quantity(value: str | int) -> float:
    match = QUANTITY.match(str(value))
    assert match, f"unexpected resource quantity {value!r}"
    return float(match[1]) * SCALE[match[2]]


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are expected here"
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(docs: list[dict]):
    for name, deploy in of_kind(docs, "Deployment").items():
        pod = deploy["spec"]["template"]["spec"]
        for container in pod["containers"]:
            yield name, pod, container


@pytest.fixture(scope="module")
def image() -> str:
    # A tag no file holds: the pin in the output can only come from the kustomize images entry.
    return f"registry.example.com:5000/tabml/tabml-service:check-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, image: str) -> dict[str, list[dict]]:
    out = tmp_path_factory.mktemp("k8s")
    done = run("make", "--no-print-directory", "manifests", f"K8S_OUT={out}", f"K8S_IMAGE={image}")
    assert done.returncode == 0, done.stdout + done.stderr
    return {
        env: [d for d in yaml.safe_load_all((out / f"{env}.yaml").read_text()) if d]
        for env in OVERLAYS
    }


def test_there_are_staging_and_production_overlays():
    assert OVERLAYS == ["production", "staging"]


def test_every_overlay_renders_and_validates(rendered: dict[str, list[dict]]):
    kinds = {env: sorted(d["kind"] for d in docs) for env, docs in rendered.items()}
    monitoring = ["PrometheusRule", "ServiceMonitor"]
    assert kinds["staging"] == sorted(
        ["Deployment", "HorizontalPodAutoscaler", "Namespace", "Service", *monitoring]
    )
    assert kinds["production"] == sorted(
        [
            "Deployment",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Namespace",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Service",
            "Service",
            *monitoring,
        ]
    )


def test_the_image_is_a_placeholder_until_pinned(rendered: dict[str, list[dict]], image: str):
    for env, docs in rendered.items():
        pinned = {c["image"] for _, _, c in containers(docs)}
        assert pinned == {image}, env
        plain = run("kubectl", "kustomize", str(K8S / "overlays" / env))
        assert plain.returncode == 0, plain.stderr
        unpinned = {c["image"] for _, _, c in containers(list(yaml.safe_load_all(plain.stdout)))}
        assert unpinned == {PLACEHOLDER}, f"{env}: the overlays leave the tag to the pin"


@pytest.mark.parametrize("bad", ["registry.example.com/tabml-service:latest", "tabml:5000/x"])
def test_an_image_without_an_exact_tag_is_refused(tmp_path: Path, bad: str):
    done = run(str(K8S / "validate.sh"), str(tmp_path), bad)
    assert done.returncode == 2
    assert "exact tag" in done.stderr and bad in done.stderr
    assert not list(tmp_path.iterdir()), "nothing is written for a refused image"


def test_an_unknown_field_fails_validation(tmp_path: Path, image: str):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    deployment = copy / "base/workload/deployment.yaml"
    text = deployment.read_text()
    assert "failureThreshold:" in text
    deployment.write_text(text.replace("failureThreshold:", "failureThresold:", 1))
    done = run(str(copy / "validate.sh"), str(tmp_path / "out"), image)
    assert done.returncode != 0
    assert "'failureThresold' was unexpected" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("path", "good", "bad", "message"),
    [
        ("base/monitoring/servicemonitor.yaml", "podTargetLabels:", "podTargetLabel:",
         "'podTargetLabel' was unexpected"),
        ("base/monitoring/servicemonitor.yaml", "scrapeTimeout: 10s", "scrapeTimeout: 10 s",
         "'10 s' does not match"),
        ("base/monitoring/prometheusrule.yaml", "kind: PrometheusRule", "kind: PrometheusRules",
         "no schema for monitoring.coreos.com/v1 PrometheusRules"),
    ],
)  # fmt: skip
def test_the_operator_kinds_are_validated_against_their_crds(
    tmp_path: Path, image: str, path: str, good: str, bad: str, message: str
):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    text = (copy / path).read_text()
    assert good in text
    (copy / path).write_text(text.replace(good, bad, 1))
    done = run(str(copy / "validate.sh"), str(tmp_path / "out"), image)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


def test_the_service_monitor_scrapes_every_pod_once(rendered: dict[str, list[dict]]):
    for env, docs in rendered.items():
        (monitor,) = of_kind(docs, "ServiceMonitor").values()
        selector = monitor["spec"]["selector"]
        chosen = {
            name
            for name, service in of_kind(docs, "Service").items()
            if all(service["metadata"]["labels"].get(k) == v
                   for k, v in selector["matchLabels"].items())
            and all(e["key"] not in service["metadata"]["labels"]
                    for e in selector["matchExpressions"] if e["operator"] == "DoesNotExist")
        }  # fmt: skip
        # Service tabml reaches the canary too; tabml-canary would scrape it a second time.
        assert chosen == {"tabml"}, env
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
        assert monitor["spec"]["podTargetLabels"] == ["track"]
        # The alias label the rules compare with the registry's: tabml-<env> serves <env>.
        (relabel,) = endpoint["relabelings"]
        assert relabel["targetLabel"] == "alias"
        assert re.fullmatch(relabel["regex"], f"tabml-{env}")
        assert re.sub(relabel["regex"], "\\1", f"tabml-{env}") == env


def test_namespaces_are_per_environment_and_restricted(rendered: dict[str, list[dict]]):
    for env, docs in rendered.items():
        namespace = f"tabml-{env}"
        (ns,) = of_kind(docs, "Namespace").values()
        assert ns["metadata"]["name"] == namespace
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        for doc in docs:
            if doc["kind"] != "Namespace":
                assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]
                assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "tabml"


def test_probes_use_bentoml_health_endpoints_on_the_served_port(rendered: dict[str, list[dict]]):
    for _, _, c in (x for docs in rendered.values() for x in containers(docs)):
        assert c["name"] == "service"
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"http": PORT}
        # The entrypoint passes these to `bentoml serve`; they must agree with the port.
        assert c["args"][c["args"].index("--port") + 1] == str(PORT)
        for probe, path in HEALTH.items():
            get = c[probe]["httpGet"]
            assert get["path"] == path, probe
            assert ports.get(get["port"], get["port"]) == PORT, probe
        assert c["startupProbe"]["httpGet"]["path"] in HEALTH.values()


def test_pods_run_as_bentoml_user_with_a_read_only_root(rendered: dict[str, list[dict]]):
    for name, pod, c in (x for docs in rendered.values() for x in containers(docs)):
        sc, csc = pod["securityContext"], c["securityContext"]
        assert sc["runAsNonRoot"] is True, name
        # BentoML's images create and run as this user.
        assert sc["runAsUser"] == sc["runAsGroup"] == BENTO_UID_GID, name
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        assert csc["allowPrivilegeEscalation"] is False
        assert csc["readOnlyRootFilesystem"] is True
        assert csc["capabilities"]["drop"] == ["ALL"]
        # Everything the service writes is an emptyDir: /tmp, BentoML's home, the log.
        scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        env = {e["name"]: e["value"] for e in c["env"]}
        for path in ("/tmp", env["BENTOML_HOME"], env["TABML_PREDICTION_LOG"]):
            assert mounts.get(path) in scratch, f"{name}: {path} is not a writable emptyDir"


def test_resources_are_bounded_and_staging_is_smaller(rendered: dict[str, list[dict]]):
    sizes = {}
    for env, docs in rendered.items():
        for name, _, c in containers(docs):
            req, lim = c["resources"]["requests"], c["resources"]["limits"]
            for resource in ("cpu", "memory"):
                assert quantity(req[resource]) <= quantity(lim[resource]), (env, name)
            sizes[env] = quantity(lim["memory"]), quantity(req["cpu"])
    assert sizes["staging"] < sizes["production"]


def test_selectors_match_the_pods_they_mean(rendered: dict[str, list[dict]]):
    for env, docs in rendered.items():
        deployments = of_kind(docs, "Deployment")
        pods = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
        for name, deploy in deployments.items():
            for other, labels in pods.items():
                # A Deployment adopting the other's pods would fight over them.
                assert selects(deploy["spec"]["selector"], labels) == (other == name), (env, name)
        services = of_kind(docs, "Service")
        for name, service in services.items():
            port = service["spec"]["ports"][0]
            assert port["port"] == 80 and port["targetPort"] == "http"
            selector = {"matchLabels": service["spec"]["selector"]}
            chosen = {n for n, labels in pods.items() if selects(selector, labels)}
            expected = {"tabml": set(pods), "tabml-canary": {"tabml-canary"}}[name]
            assert chosen == expected, (env, name)


def test_production_has_a_canary_at_zero_with_the_stable_pod_spec(rendered: dict[str, list[dict]]):
    deployments = of_kind(rendered["production"], "Deployment")
    stable, canary = deployments["tabml"], deployments["tabml-canary"]
    assert canary["spec"]["replicas"] == 0
    assert canary["spec"]["template"]["metadata"]["labels"]["track"] == "canary"
    assert canary["spec"]["template"]["spec"] == stable["spec"]["template"]["spec"]
    assert "tabml-canary" in of_kind(rendered["production"], "Service")
    assert set(of_kind(rendered["staging"], "Deployment")) == {"tabml"}
    assert set(of_kind(rendered["staging"], "Service")) == {"tabml"}


def test_autoscaler_and_budget_target_existing_deployments(rendered: dict[str, list[dict]]):
    minimum = {}
    for env, docs in rendered.items():
        deployments = of_kind(docs, "Deployment")
        # The autoscaler owns the stable replica count: a count here would reset it on apply.
        assert "replicas" not in deployments["tabml"]["spec"], env
        (hpa,) = of_kind(docs, "HorizontalPodAutoscaler").values()
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] == "tabml", env
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        minimum[env] = hpa["spec"]["minReplicas"]
        for pdb in of_kind(docs, "PodDisruptionBudget").values():
            chosen = [
                n
                for n, d in deployments.items()
                if selects(pdb["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
            ]
            assert chosen == ["tabml"], env
    assert minimum["production"] >= 3 > minimum["staging"]
    assert of_kind(rendered["production"], "PodDisruptionBudget")


def test_the_deploy_pins_the_canary_and_keeps_the_stable_image(monkeypatch: pytest.MonkeyPatch):
    if importlib.util.find_spec("tabml.deploy") is None:
        pytest.skip(
            "tabml.deploy, which renders these overlays for a release, is not in this tree"
        )
    deploy = importlib.import_module("tabml.deploy")
    monkeypatch.chdir(ROOT)  # it reads the manifests from the project root
    new, old = "registry.example.com/tabml-service:new1", "registry.example.com/tabml-service:old1"
    docs = deploy.render("production", new, stable_image=old)
    assert {n: c["image"] for n, _, c in containers(docs)} == {"tabml": old, "tabml-canary": new}
    docs = deploy.render("staging", new)
    assert {n: c["image"] for n, _, c in containers(docs)} == {"tabml": new}
