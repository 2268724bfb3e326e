"""The Kubernetes manifests (deploy/k8s), checked offline: no cluster and no kustomize binary needed.

`render` builds the base and the cpu overlay the way their kustomization.yaml files declare (resources,
namespace, secretGenerator, strategic-merge and RFC 6902 patches: only the features they use; anything else
fails the test). Every built-in resource is validated with kubernetes-validate against the Kubernetes 1.37
OpenAPI schemas, strict (an unknown field fails); the KEDA ScaledObject against the OpenAPI schema of KEDA's own
CRD (vendored in deploy/k8s/schemas), made strict the same way. Then the manifests are held against the code and
docker-compose.yml: settings names and values, images and commands, probes, metrics, security, secrets,
autoscaling bounds. Where kubectl is installed, its built-in kustomize renders the same trees and must agree.
"""

from __future__ import annotations

import base64
import copy
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from core.settings import FLAT_NAMES, KafkaSettings, RuntimeSettings, Settings, WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
CPU = K8S / "overlays" / "cpu"
SHADOW = K8S / "overlays" / "shadow"
SECRETS_EXAMPLE = BASE / "secrets.env.example"
CRD_PATH = K8S / "schemas" / "keda.sh_scaledobjects.yaml"
COMPOSE_PATH = ROOT / "docker-compose.yml"
DOCKERFILE_PATH = ROOT / "deploy" / "Dockerfile"
CLI = ROOT / "monitor" / "cli"

KUBERNETES_VERSION = "1.37.0"
"""The newest Kubernetes whose schemas kubernetes-validate (pinned in the dev extra) bundles."""

KEDA_KAFKA_METADATA = {
    "bootstrapServers", "consumerGroup", "topic", "partitionLimitation", "lagThreshold", "activationLagThreshold",
    "offsetResetPolicy", "allowIdleConsumers", "excludePersistentLag", "scaleToZeroOnInvalidOffset",
    "limitToPartitionsWithLag", "ensureEvenDistributionOfPartitions", "version", "tls", "unsafeSsl", "sasl",
    "saslTokenProvider", "awsRegion",
}
"""Trigger metadata the Kafka scaler reads (`order=triggerMetadata` in pkg/scalers/kafka_scaler.go, KEDA v2.20.2,
the release of the vendored CRD). The CRD types metadata as string -> string only, so a misspelt key would pass
it silently."""

CLUSTER_SCOPED = {"Namespace"}
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}
"""The patchMergeKey of the lists a strategic-merge patch may touch here (Kubernetes' core/v1 and apps/v1 types);
every other list is replaced whole, as in Kubernetes."""

COMPOSE_SERVICE = {"worker": "worker", "sink": "sink", "api": "api", "ingest-bluesky": "ingest-bluesky",
                   "migrate": "migrate"}
"""Container name -> the docker-compose.yml service it mirrors."""

SECRET_NAME = "monitor-secrets"
PLACEHOLDER = "CHANGE_ME"


# --- rendering --------------------------------------------------------------------------------------------------

def yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as Kustomize reads an `envs` file (comments and blank lines skipped, values literal)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"{path.name}: not KEY=value: {line!r}"
        assert key not in pairs, f"{path.name}: {key} twice"
        pairs[key] = value
    return pairs


def strategic_merge(target: dict, patch: dict) -> None:
    """Apply a strategic-merge patch in place: maps merge, null deletes, MERGE_KEYS lists merge by key."""
    for key, value in patch.items():
        assert not key.startswith("$"), f"patch directive {key} is not supported by this helper"
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            strategic_merge(target[key], value)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(target.get(key), list):
            merge_key = MERGE_KEYS[key]
            for item in value:
                match = next((old for old in target[key] if old[merge_key] == item[merge_key]), None)
                if match is None:
                    target[key].append(copy.deepcopy(item))
                else:
                    strategic_merge(match, item)
        else:
            target[key] = copy.deepcopy(value)


def json6902(target: dict, operations: list[dict]) -> None:
    """Apply RFC 6902 `replace` operations (the only op the overlays use) in place; the path must exist."""
    for operation in operations:
        assert operation["op"] == "replace", f"op {operation['op']} is not supported by this helper"
        *parents, last = [part.replace("~1", "/").replace("~0", "~")
                          for part in operation["path"].removeprefix("/").split("/")]
        node: Any = target
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = operation["value"]
        else:
            assert last in node, f"replace of a missing {operation['path']}"
            node[last] = operation["value"]


def matches(resource: dict, target: dict) -> bool:
    group, _, version = resource["apiVersion"].rpartition("/")
    wanted = {"group": group, "version": version, "kind": resource["kind"], "name": resource["metadata"]["name"]}
    return all(wanted[key] == value for key, value in target.items())


def render(directory: Path, secrets: dict[str, str] | None = None) -> list[dict]:
    """The resources `kubectl kustomize directory` makes, for the kustomization features these trees use, with
    `secrets` standing in for the git-ignored env files of secretGenerator (default: the example's values)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "namespace", "resources", "secretGenerator", "patches"}
    assert not unsupported, f"{directory}: the test's renderer does not know {sorted(unsupported)}"
    resources: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        assert path.is_relative_to(K8S), f"{entry} is outside deploy/k8s"
        resources += render(path, secrets) if path.is_dir() else yaml_documents(path)
    for generator in kustomization.get("secretGenerator", []):
        assert set(generator) == {"name", "envs"}, generator
        data: dict[str, str] = {}
        for name in generator["envs"]:
            data |= secrets if secrets is not None else env_file(directory / f"{name}.example")
        resources.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                          "metadata": {"name": generator["name"]},
                          "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}})
    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = namespace
    for patch in kustomization.get("patches", []):
        assert set(patch) <= {"path", "target"}, patch
        body = yaml.safe_load((directory / patch["path"]).read_text())
        if "target" in patch:
            found = [resource for resource in resources if matches(resource, patch["target"])]
            assert len(found) == 1, f"{patch['path']}: {len(found)} targets"
            json6902(found[0], body)
        else:
            found = [resource for resource in resources
                     if (resource["apiVersion"], resource["kind"], resource["metadata"]["name"])
                     == (body["apiVersion"], body["kind"], body["metadata"]["name"])]
            assert len(found) == 1, f"{patch['path']}: {len(found)} targets"
            strategic_merge(found[0], body)
    return resources


@cache
def _rendered(directory: Path) -> tuple[dict, ...]:
    return tuple(render(directory))


def rendered(directory: Path) -> list[dict]:
    """A private copy of the rendering of `directory` (each test may change its copy)."""
    return copy.deepcopy(list(_rendered(directory)))


TREES = {"default": K8S, "base": BASE, "cpu": CPU, "shadow": SHADOW}


def one(resources: list[dict], kind: str, name: str) -> dict:
    (found,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def deployments(resources: list[dict]) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == "Deployment"}


def pod_containers(deployment: dict) -> list[dict]:
    spec = deployment["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def all_containers(resources: list[dict]) -> list[dict]:
    return [c for deployment in deployments(resources).values() for c in pod_containers(deployment)]


# --- the code and compose side ------------------------------------------------------------------------------------

@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_PATH.read_text())


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")


def compose_default(value: Any) -> str:
    """A compose value with its `${VAR:-default}` as compose resolves it with nothing set."""
    return INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) == "-" else f"<{m.group(1)}>", str(value))


def cli_env_names() -> set[str]:
    """Variables the CLI's options read (`envvar=`) besides the settings: the connectors' and replay's."""
    names = set()
    for path in CLI.glob("*.py"):
        names |= set(re.findall(r"""envvar=["']([A-Z_][A-Z0-9_]*)["']""", path.read_text()))
    assert names, "no envvar= in monitor/cli: did the pattern go stale?"
    return names


def image_tags() -> dict[str, str]:
    """Build target -> image tag, from the build commands at the top of the Dockerfile."""
    tags = dict(re.findall(r"--target\s+(\S+)\s+-t\s+(\S+)", DOCKERFILE_PATH.read_text()))
    assert {"runtime", "worker-cuda"} <= set(tags), tags
    return tags


def container_env(container: dict, resources: list[dict]) -> dict[str, str | None]:
    """name -> literal value of everything the container's environment holds (a Secret's keys as None)."""
    config = one(resources, "ConfigMap", "monitor-config")["data"]
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"} and source["configMapRef"]["name"] == "monitor-config", source
        env |= config
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "configMapKeyRef" in ref:
            assert ref["configMapKeyRef"]["name"] == "monitor-config"
            env[item["name"]] = config[ref["configMapKeyRef"]["key"]]
        else:
            assert ref["secretKeyRef"]["name"] == SECRET_NAME and ref["secretKeyRef"]["key"] == item["name"], item
            env[item["name"]] = None
    return env


# --- schema validation ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tree", TREES)
def test_every_builtin_resource_validates_strictly(tree):
    resources = rendered(TREES[tree])
    builtin = [r for r in resources if r["kind"] != "ScaledObject"]
    assert {r["kind"] for r in builtin} == {"Namespace", "ConfigMap", "Secret", "Deployment", "Service",
                                            "PersistentVolumeClaim"}
    for resource in builtin:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_an_unknown_field():
    worker = one(rendered(BASE), "Deployment", "worker")
    worker["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # `resources` misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, KUBERNETES_VERSION, strict=True)


def strict(schema: Any) -> Any:
    """The schema with `additionalProperties: false` on every object that lists its properties and does not
    preserve unknown fields: the API server's strict field validation (kubectl's default) refuses those fields."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@cache
def scaled_object_schema() -> dict:
    (crd,) = yaml_documents(CRD_PATH)
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] == "ScaledObject"
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    assert version["served"] and version["storage"]
    return strict(version["schema"]["openAPIV3Schema"])


def validate_scaled_object(resource: dict) -> None:
    assert resource["apiVersion"] == "keda.sh/v1alpha1"
    jsonschema.Draft4Validator(scaled_object_schema()).validate(resource)  # OpenAPI 3.0 schemas are draft 4-ish
    # The CRD types metadata as a bare object: check it as Kubernetes' ObjectMeta.
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": resource["metadata"]},
                                 KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("tree", TREES)
def test_the_scaled_object_validates_against_kedas_crd(tree):
    validate_scaled_object(one(rendered(TREES[tree]), "ScaledObject", "worker"))


@pytest.mark.parametrize(("path", "value"), [
    (("spec", "maxReplicas"), 12),  # maxReplicaCount misspelt
    (("spec", "triggers", 0, "metadata", "allowIdleConsumers"), False),  # metadata values are strings
    (("spec", "minReplicaCount"), "1"),
])
def test_the_crd_schema_rejects_a_broken_scaled_object(path, value):
    scaled = one(rendered(BASE), "ScaledObject", "worker")
    node = scaled
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate_scaled_object(scaled)


def test_the_vendored_crd_names_its_source_and_licence():
    header = CRD_PATH.read_text().split("\n---\n", 1)[0]
    assert "https://github.com/kedacore/keda/blob/v2.20.2/config/crd/bases/keda.sh_scaledobjects.yaml" in header
    assert "Apache License, Version 2.0" in header and "The KEDA Authors" in header


# --- rendering agrees with Kustomize ---------------------------------------------------------------------------------

HASHED_SECRET = re.compile(rf"\b{SECRET_NAME}-[a-z0-9]{{10}}\b")


def canonical(node: Any) -> Any:
    """Order-free form for comparison: lists of named items become maps by name (Kustomize and this helper may
    place a merged list item differently; for env that matters only to $(VAR) references, unused here)."""
    if isinstance(node, dict):
        return {key: canonical(value) for key, value in node.items()}
    if isinstance(node, list) and node and all(isinstance(item, dict) and "name" in item for item in node):
        return {item["name"]: canonical(item) for item in node}
    if isinstance(node, list):
        return [canonical(item) for item in node]
    return node


def comparable(resources: list[dict]) -> dict:
    out = {}
    for resource in resources:
        resource = copy.deepcopy(resource)
        if resource["kind"] == "Secret":  # Kustomize folds long base64 lines
            resource["data"] = {k: base64.b64decode(v).decode() for k, v in resource.get("data", {}).items()}
        key = (resource["kind"], resource["metadata"]["name"])
        out[key] = canonical(resource)
    return out


@pytest.mark.parametrize("tree", TREES)
def test_the_rendering_matches_kubectl_kustomize(tree, tmp_path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: its kustomize is the reference, the rest of this file does not need it")
    copy_root = tmp_path / "k8s"
    shutil.copytree(K8S, copy_root)
    (copy_root / "base" / "secrets.env").write_text(SECRETS_EXAMPLE.read_text())
    done = subprocess.run([kubectl, "kustomize", str(copy_root / TREES[tree].relative_to(K8S))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    theirs = list(yaml.safe_load_all(HASHED_SECRET.sub(SECRET_NAME, done.stdout)))
    assert comparable(theirs) == comparable(rendered(TREES[tree]))


# --- the manifests against the code and compose -----------------------------------------------------------------------

def test_the_default_is_the_base_and_the_overlay_changes_only_the_worker():
    assert comparable(rendered(K8S)) == comparable(rendered(BASE))
    base, cpu = comparable(rendered(BASE)), comparable(rendered(CPU))
    assert base.keys() == cpu.keys()
    assert {key for key in base if base[key] != cpu[key]} == {("Deployment", "worker"), ("ScaledObject", "worker")}


def test_the_shadow_overlay_adds_only_a_challenger_worker():
    base, shadow = comparable(rendered(BASE)), comparable(rendered(SHADOW))
    assert shadow.keys() - base.keys() == {("Deployment", "worker-challenger")}
    assert all(shadow[key] == base[key] for key in base)
    challenger = one(rendered(SHADOW), "Deployment", "worker-challenger")
    worker = one(rendered(BASE), "Deployment", "worker")
    env = {e["name"]: e.get("value") for e in challenger["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_ROLE"] == "challenger" and 0 < float(env["MODEL_SHADOW_SHARE"]) <= 1
    assert challenger["spec"]["selector"] != worker["spec"]["selector"]  # the champions' Deployment never adopts it
    assert not any(r["kind"] == "ScaledObject" and r["spec"]["scaleTargetRef"]["name"] == "worker-challenger"
                   for r in rendered(SHADOW))


def test_one_namespace_for_everything():
    resources = rendered(BASE)
    (namespace,) = [r for r in resources if r["kind"] == "Namespace"]
    name = namespace["metadata"]["name"]
    assert yaml.safe_load((BASE / "kustomization.yaml").read_text())["namespace"] == name
    for path in BASE.glob("*.yaml"):  # the files say it too, so `kubectl apply -f` of one file lands right
        for doc in yaml_documents(path):
            if doc.get("kind") not in (*CLUSTER_SCOPED, "Kustomization"):
                assert doc["metadata"]["namespace"] == name, path.name
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_configmap_is_composes_shared_settings():
    config = one(rendered(BASE), "ConfigMap", "monitor-config")["data"]
    shared = compose()["x-monitor-env"]
    assert set(config) == set(shared)
    for name, value in shared.items():
        if name != "KAFKA_BOOTSTRAP":  # a Kubernetes Service address instead of compose's `kafka`
            assert config[name] == compose_default(value), name
    assert config["METRICS_HOST"] == "0.0.0.0"
    assert config["KAFKA_BOOTSTRAP"].endswith(".svc:9092")


def test_every_variable_is_a_setting_or_a_cli_option():
    known = {name.upper() for name in FLAT_NAMES} | cli_env_names()
    for tree in (BASE, CPU, SHADOW):
        resources = rendered(tree)
        names = set(one(resources, "ConfigMap", "monitor-config")["data"])
        names |= set(env_file(SECRETS_EXAMPLE))
        for container in all_containers(resources):
            names |= {item["name"] for item in container.get("env", [])}
        assert names - known == set(), f"{tree.name}: not read by the monitor"


@pytest.mark.parametrize("tree", [BASE, CPU, SHADOW], ids=["base", "cpu", "shadow"])
def test_every_container_environment_is_accepted_by_settings(tree):
    resources = rendered(tree)
    secrets = env_file(SECRETS_EXAMPLE)
    settings_names = {name.upper() for name in FLAT_NAMES}
    for container in all_containers(resources):
        env = {k: secrets[k] if v is None else v for k, v in container_env(container, resources).items()}
        settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items() if k in settings_names})
        if "KAFKA_BOOTSTRAP" in env:
            assert settings.kafka.session_timeout_s >= 6  # Apache Kafka's group.min.session.timeout.ms
            assert settings.kafka.heartbeat_s * 3 <= settings.kafka.session_timeout_s
            assert settings.runtime.metrics_host == "0.0.0.0"


def test_images_args_and_variables_match_compose():
    resources = rendered(BASE)
    services = compose()["services"]
    tags = image_tags()
    seen = set()
    for container in all_containers(resources):
        service = services[COMPOSE_SERVICE[container["name"]]]
        seen.add(container["name"])
        assert "command" not in container, "keep the image's ENTRYPOINT (`monitor`): set args"
        assert container["args"] == service["command"], container["name"]
        target = service.get("build", {}).get("target")
        assert container["image"] == tags[target], container["name"]
        env = container_env(container, resources)
        wanted = {name for name, value in service["environment"].items() if value is not None}
        assert set(env) == wanted, f"{container['name']}: differs from compose's {COMPOSE_SERVICE[container['name']]}"
        for name, value in env.items():
            if value is not None and name != "KAFKA_BOOTSTRAP":
                assert value == compose_default(service["environment"][name]), (container["name"], name)
    assert seen == set(COMPOSE_SERVICE)


def test_every_command_exists():
    from monitor.cli.main import main

    for container in all_containers(rendered(BASE)):
        command = main.commands[container["args"][0]]
        for sub in container["args"][1:2]:
            assert sub in command.commands, container["args"]


def test_every_container_has_requests_and_limits():
    for tree in (BASE, CPU, SHADOW):
        for container in all_containers(rendered(tree)):
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), (tree.name, container["name"], kind)


def test_security_context_and_writable_paths():
    workdir = re.findall(r"^WORKDIR\s+(\S+)", DOCKERFILE_PATH.read_text(), re.MULTILINE)[-1]
    user = re.findall(r"^USER\s+(\d+):(\d+)", DOCKERFILE_PATH.read_text(), re.MULTILINE)
    assert set(user) == {("10001", "10001")}
    # DATA_DIR (Faust's app folders) is relative: it lands in the working directory, an emptyDir here.
    assert not RuntimeSettings.model_fields["data_dir"].default.is_absolute()
    for deployment in deployments(rendered(BASE)).values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["fsGroup"] == 10001
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in pod_containers(deployment):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"]}
            assert "emptyDir" in mounts[workdir] and "emptyDir" in mounts["/tmp"], container["name"]


def grace_seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)s", value)
    assert match, value
    return int(match.group(1))


def test_grace_periods_cover_the_drain():
    services = compose()["services"]
    for name, deployment in deployments(rendered(BASE)).items():
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        if "stop_grace_period" in services[name]:
            assert grace >= grace_seconds(services[name]["stop_grace_period"]), name
    # A worker finishes the batches it pulled for up to 30 s, then commits.
    assert deployments(rendered(BASE))["worker"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 30


def test_metrics_ports_and_scrape_annotations():
    port = RuntimeSettings.model_fields["metrics_port"].default
    for name in ("worker", "sink", "ingest-bluesky"):
        deployment = deployments(rendered(BASE))[name]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
                               "prometheus.io/path": "/metrics"}


async def test_the_api_is_probed_on_its_health_endpoint_and_served():
    import httpx

    from monitor.api.app import create_app

    resources = rendered(BASE)
    api = deployments(resources)["api"]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    assert port["name"] == "http" and str(port["containerPort"]) == container_env(container, resources)["API_PORT"]
    app = create_app(Settings(_env_file=None), run_alerts=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        for probe in ("readinessProbe", "livenessProbe"):  # no lifespan, no database: what a probe needs
            get = container[probe]["httpGet"]
            assert get["port"] == "http" and get["path"] == "/healthz"
            response = await client.get(get["path"])  # unauthenticated
            assert response.status_code == 200 and response.json() == {"status": "ok"}
    service = one(resources, "Service", "api")
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_schema_is_migrated_before_the_sink_and_the_api_start():
    resources = rendered(BASE)
    for name in ("sink", "api"):
        pod = deployments(resources)[name]["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        assert init["args"] == ["migrate"]
        (main,) = pod["containers"]
        secret_refs = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in main["env"]
                       if "secretKeyRef" in item.get("valueFrom", {})}
        assert {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": secret_refs["DATABASE_URL"]}} in init["env"]


def test_selectors_match_their_pods():
    for deployment in deployments(rendered(BASE)).values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_connector_runs_once_and_keeps_its_cursor():
    resources = rendered(BASE)
    connector = deployments(resources)["ingest-bluesky"]
    assert connector["spec"]["replicas"] == 1
    assert connector["spec"]["strategy"] == {"type": "Recreate"}  # never two pods under one connector name
    pod = connector["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    state_dir = container_env(container, resources)["INGEST_STATE_DIR"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == state_dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = one(resources, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


# --- GPU and CPU workers, autoscaling ---------------------------------------------------------------------------------

def test_the_gpu_worker():
    resources = rendered(BASE)
    worker = deployments(resources)["worker"]
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container_env(container, resources)["DEVICE"] == "cuda"
    assert container["image"] == image_tags()["worker-cuda"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in \
        worker["spec"]["template"]["spec"]["tolerations"]


def test_the_cpu_overlay_drops_the_gpu():
    resources = rendered(CPU)
    worker = deployments(resources)["worker"]
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "tolerations" not in pod
    assert container["image"] == image_tags()["runtime"]
    env = container_env(container, resources)
    assert env["DEVICE"] == "cpu"
    # One model thread per core of the limit, less one: Python sees the node's cores, not the limit.
    assert int(env["MODEL_THREADS"]) == int(container["resources"]["limits"]["cpu"]) - 1


@pytest.mark.parametrize("tree", [BASE, CPU, SHADOW], ids=["base", "cpu", "shadow"])
def test_keda_scales_the_worker_on_its_groups_lag_up_to_the_partitions(tree):
    resources = rendered(tree)
    scaled = one(resources, "ScaledObject", "worker")
    config = one(resources, "ConfigMap", "monitor-config")["data"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}
    assert "replicas" not in deployments(resources)["worker"]["spec"], "KEDA owns the worker's replica count"
    assert spec["minReplicaCount"] == 1
    assert spec["maxReplicaCount"] == int(config["TOPIC_PARTITIONS"])
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert set(metadata) <= KEDA_KAFKA_METADATA
    assert metadata["bootstrapServers"] == config["KAFKA_BOOTSTRAP"]
    assert metadata["consumerGroup"] == WorkerSettings.model_fields["group"].default
    assert metadata["topic"] == KafkaSettings.model_fields["posts_topic"].default
    assert metadata["allowIdleConsumers"] == "false"
    assert metadata["offsetResetPolicy"] == "earliest"  # as the workers' consumers start a new group
    assert int(metadata["lagThreshold"]) > 0


def test_the_cpu_overlay_adds_replicas_at_less_lag():
    def threshold(tree: Path) -> int:
        return int(one(rendered(tree), "ScaledObject", "worker")["spec"]["triggers"][0]["metadata"]["lagThreshold"])

    assert threshold(CPU) < threshold(BASE)


# --- secrets --------------------------------------------------------------------------------------------------------

def test_no_secret_is_committed():
    for path in K8S.rglob("*.yaml"):
        for doc in yaml_documents(path):  # a JSON 6902 patch is a list
            kind = doc.get("kind") if isinstance(doc, dict) else None
            assert kind != "Secret", f"{path}: a Secret in git (use secretGenerator and secrets.env)"
    assert "secrets.env" in (BASE / ".gitignore").read_text().split()


def test_the_secret_template_holds_placeholders_only():
    secrets = env_file(SECRETS_EXAMPLE)
    for name, value in secrets.items():
        if name.endswith("DATABASE_URL") and value:
            assert urlsplit(value).password == PLACEHOLDER, name
        else:
            assert "@" not in value, f"{name} carries a credential"
    assert set(secrets) >= {"DATABASE_URL", "REDIS_URL", "API_READ_TOKEN", "API_ADMIN_TOKEN"}
    assert not any(secrets[name] for name in ("API_READ_TOKEN", "API_ADMIN_TOKEN", "ALERT_WEBHOOK_URL"))


def test_every_secret_reference_exists_in_the_template():
    secrets = env_file(SECRETS_EXAMPLE)
    for container in all_containers(rendered(BASE)):
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets, (container["name"], ref["key"])
