"""The monitoring profile: Prometheus and Grafana in docker-compose.yml (compose profile ``monitoring``,
``make up MONITORING=1``), their configuration in deploy/monitoring/, and the scrape annotations of deploy/k8s.

The scrape targets are read from the compose file, and the dashboard may query only the metrics that the table of
docs/operations.md lists, so neither can drift from the services without a test failing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING_SERVICES = {"prometheus", "grafana"}
# compose reads COMPOSE_PROFILES like --profile; empty variables fall back to the file's defaults (``${X:-default}``),
# so a developer's .env (which `make test` exports) changes nothing here
MONITORING_ENV = {
    "COMPOSE_PROFILES": "monitoring",
    "PROMETHEUS_PORT": "",
    "GRAFANA_PORT": "",
    "GRAFANA_ADMIN_PASSWORD": "",
}
PROMETHEUS_CONFIG = REPO_ROOT / "deploy/monitoring/prometheus.yml"
GRAFANA_PROVISIONING = REPO_ROOT / "deploy/monitoring/grafana/provisioning"
DASHBOARD = REPO_ROOT / "deploy/monitoring/grafana/dashboards/voice-agent.json"
OPERATIONS = REPO_ROOT / "docs/operations.md"
OVERLAYS = {
    "gpu": ("docker-compose.gpu.yml",),
    "replicas": ("deploy/compose/replicas.yml",),
    "gpu+replicas": ("docker-compose.gpu.yml", "deploy/compose/replicas.yml"),
    "external-llm": ("deploy/compose/external-llm.yml",),
}
# what the dashboard must show (latency, throughput, errors, memory, model state), checked against its expressions
DASHBOARD_METRICS = {
    "llm_time_to_first_token_seconds_bucket",
    "tts_time_to_first_audio_seconds_bucket",
    "stt_real_time_factor_bucket",
    "conversation_end_of_speech_to_audio_seconds_bucket",
    "http_request_duration_seconds_bucket",
    "http_requests_total",
    "llm_completion_tokens_total",
    "stt_audio_seconds_total",
    "tts_audio_seconds_total",
    "conversation_turns_total",
    "conversation_barge_ins_total",
    "http_requests_refused_total",
    "llm_streams_cut_total",
    "process_resident_memory_bytes",
    "gpu_memory_used_bytes",
    "model_loaded",
}
# PromQL words that look like metric names: set operators, modifiers and the float literals Inf and NaN
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
Config = dict[str, Any]


def documented_metrics(markdown: str) -> set[str]:
    """The metric names in the first column of the table under "## Metrics", each histogram with the series that
    Prometheus stores for it (``_bucket``, ``_sum``, ``_count``); a cell may name several, comma-separated."""
    section = markdown.split("\n## Metrics", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):  # prose, the header or the |---| row
            continue
        for name in re.findall(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0]):
            names.add(name)
            if cells[1].startswith("histogram"):
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects; not its functions, aggregations, labels, keywords or numbers."""
    assert "__name__" not in expression, f"select metrics by name, not by a __name__ matcher: {expression}"
    expression = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # label values and regular expressions
    expression = re.sub(r"\{[^}]*\}", " ", expression)  # label matchers
    expression = re.sub(r"\[[^\]]*\]", " ", expression)  # range selectors, subqueries
    expression = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expression)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", expression):
        if expression[match.end() :].lstrip().startswith("("):  # a function or an aggregation
            continue
        if match.group().lower() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def scrape_jobs(config: dict[str, Any]) -> dict[str, tuple[str, int, str]]:
    """``{job: (host name, port, metrics path)}`` of a Prometheus configuration with one DNS name per job."""
    jobs = {}
    for job in config["scrape_configs"]:
        (discovery,) = job["dns_sd_configs"]
        (name,) = discovery["names"]
        assert discovery["type"] == "A", job["job_name"]
        jobs[job["job_name"]] = (name, discovery["port"], job.get("metrics_path", "/metrics"))
    return jobs


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def mount_source(service: Config, target: str, project: Path) -> Path:
    """Where in the repository the bind mount of ``service`` at ``target`` comes from (compose ran in ``project``)."""
    (volume,) = [v for v in service["volumes"] if v["target"] == target]
    assert volume["type"] == "bind" and volume["read_only"] is True, volume
    return REPO_ROOT / Path(volume["source"]).relative_to(project)


@pytest.fixture(scope="module")
def monitoring_config(compose_config: Callable[..., Config]) -> Config:
    return compose_config("docker-compose.yml", env=MONITORING_ENV)


@pytest.fixture(scope="module")
def prometheus_config() -> Config:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert isinstance(config, dict)
    return config


@pytest.fixture(scope="module")
def dashboard() -> Config:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def datasource() -> Config:
    (source,) = load_yaml(GRAFANA_PROVISIONING / "datasources/prometheus.yml")["datasources"]
    return source


def test_the_monitoring_profile_adds_prometheus_and_grafana(
    compose_config: Callable[..., Config], monitoring_config: Config
) -> None:
    plain = compose_config("docker-compose.yml", env={"COMPOSE_PROFILES": ""})
    assert MONITORING_SERVICES.isdisjoint(plain["services"]), "plain `docker compose up` must not start them"
    assert "prometheus" not in plain.get("volumes", {})
    assert set(monitoring_config["services"]) == set(plain["services"]) | MONITORING_SERVICES
    for name in MONITORING_SERVICES:
        assert monitoring_config["services"][name]["profiles"] == ["monitoring"]
    for name in plain["services"]:
        assert monitoring_config["services"][name] == plain["services"][name], name


def test_the_profile_flag_of_the_makefile_validates(compose_binary: Path, compose_project: Path) -> None:
    result = subprocess.run(
        [compose_binary, "-f", "docker-compose.yml", "--profile", "monitoring", "config", "--services"],
        capture_output=True,
        text=True,
        cwd=compose_project,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) >= MONITORING_SERVICES


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_monitoring_profile_combines_with_every_overlay(
    compose_config: Callable[..., Config], monitoring_config: Config, overlay: str
) -> None:
    env = {**MONITORING_ENV, "FRONTEND_LLM_URL": "http://vllm.internal:8000"}
    services = compose_config("docker-compose.yml", *OVERLAYS[overlay], env=env)["services"]
    for name in MONITORING_SERVICES:
        assert services[name] == monitoring_config["services"][name], (overlay, name)


def test_prometheus_and_grafana_are_declared_like_the_other_containers(
    monitoring_config: Config, compose_config: Callable[..., Config], compose_project: Path
) -> None:
    services = monitoring_config["services"]
    for name, port in (("prometheus", 9090), ("grafana", 3000)):
        service = services[name]
        image, _, tag = service["image"].rpartition(":")
        assert image and tag and tag != "latest", f"{name}: pin the image's tag"
        assert "build" not in service, name
        assert service["restart"] == "unless-stopped"
        assert f"http://127.0.0.1:{port}/" in " ".join(service["healthcheck"]["test"]), name
        (published,) = service["ports"]
        assert (published["host_ip"], published["target"], published["published"]) == ("127.0.0.1", port, str(port))
        # the stack's settings stay out of these two: they read none of them
        assert "env_file" not in service, name
    moved = compose_config(
        "docker-compose.yml", env={**MONITORING_ENV, "PROMETHEUS_PORT": "9190", "GRAFANA_PORT": "3100"}
    )
    assert moved["services"]["prometheus"]["ports"][0]["published"] == "9190"
    assert moved["services"]["grafana"]["ports"][0]["published"] == "3100"

    prometheus = services["prometheus"]
    assert mount_source(prometheus, "/etc/prometheus/prometheus.yml", compose_project) == PROMETHEUS_CONFIG
    (data,) = [v for v in prometheus["volumes"] if v["target"] == "/prometheus"]
    assert data["type"] == "volume" and data["source"] in monitoring_config["volumes"]

    grafana = services["grafana"]
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    for folder in ("datasources", "dashboards"):
        source = mount_source(grafana, f"/etc/grafana/provisioning/{folder}", compose_project)
        assert source == GRAFANA_PROVISIONING / folder and source.is_dir()


def test_grafana_is_open_to_viewers_and_its_admin_password_comes_from_the_env_file(
    monitoring_config: Config, compose_config: Callable[..., Config]
) -> None:
    environment = monitoring_config["services"]["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == "admin", "the documented default"
    changed = compose_config("docker-compose.yml", env={**MONITORING_ENV, "GRAFANA_ADMIN_PASSWORD": "s3cret"})
    assert changed["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret"


def test_prometheus_scrapes_every_service_of_the_stack_on_its_port(
    prometheus_config: Config, monitoring_config: Config
) -> None:
    """One job per compose service, named like it, on the port its container listens on (the page's metrics port
    for the page), every 15 s."""
    assert prometheus_config["global"]["scrape_interval"] == "15s"
    expected = {}
    for name, service in monitoring_config["services"].items():
        if name in MONITORING_SERVICES:
            continue
        environment = service["environment"]
        prefix = name.upper()
        if f"{prefix}_METRICS_PORT" in environment:  # the page: Streamlit's port serves no /metrics
            assert environment[f"{prefix}_METRICS_HOST"] == "0.0.0.0", "reachable from the prometheus container"
            port = environment[f"{prefix}_METRICS_PORT"]
        else:
            port = environment[f"{prefix}_PORT"]
            assert service["ports"][0]["target"] == int(port), name
        expected[name] = (name, int(port), "/metrics")
    assert scrape_jobs(prometheus_config) == expected


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus: apt-get install prometheus)")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisions_prometheus_and_the_dashboard_folder(
    datasource: Config, monitoring_config: Config, compose_project: Path
) -> None:
    assert datasource["type"] == "prometheus"
    assert datasource["uid"]
    prometheus_port = monitoring_config["services"]["prometheus"]["ports"][0]["target"]
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    assert datasource["jsonData"]["timeInterval"] == load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]

    (provider,) = load_yaml(GRAFANA_PROVISIONING / "dashboards/voice-agent.yml")["providers"]
    assert provider["type"] == "file"
    grafana = monitoring_config["services"]["grafana"]
    path = provider["options"]["path"]
    assert mount_source(grafana, path, compose_project) == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{path}/{DASHBOARD.name}"


def test_the_dashboard_queries_the_provisioned_datasource(dashboard: Config, datasource: Config) -> None:
    assert dashboard["title"] == "Voice agent"
    panels = list(all_panels(dashboard["panels"]))
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids must be unique"
    queried = [panel for panel in panels if panel["type"] != "row"]
    assert queried
    for panel in queried:
        expected = {"type": "prometheus", "uid": datasource["uid"]}
        assert panel["datasource"] == expected, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == expected, panel["title"]
            assert target["expr"].strip(), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_the_dashboard_uses_only_the_documented_metrics(dashboard: Config) -> None:
    documented = documented_metrics(OPERATIONS.read_text())
    used: set[str] = set()
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            names = metric_names(target["expr"])
            assert names, target["expr"]
            assert names <= documented, f"{panel['title']}: {sorted(names - documented)} not in docs/operations.md"
            used |= names
    assert used >= DASHBOARD_METRICS, f"the dashboard lost {sorted(DASHBOARD_METRICS - used)}"


def test_the_documented_metrics_and_the_expression_parser() -> None:
    """The two helpers the dashboard test relies on, on known input."""
    documented = documented_metrics(OPERATIONS.read_text())
    assert {"http_requests_total", "gpu_memory_used_bytes", "gpu_memory_total_bytes", "model_info"} <= documented
    assert {"stt_real_time_factor_bucket", "stt_real_time_factor_count", "stt_real_time_factor_sum"} <= documented
    assert "http_requests_total_bucket" not in documented, "only histograms have buckets"
    assert "metric" not in documented and "process_cpu_seconds_total" not in documented
    expression = (
        'histogram_quantile(0.95, sum by (le, job) (rate(a_seconds_bucket{handler!~"/health|/ready"}[5m]))) '
        '/ on (job) group_left sum without (instance) (b_total offset 1h) * 1e3 and bool c:ratio{x="y"}[5m:1m]'
    )
    assert metric_names(expression) == {"a_seconds_bucket", "b_total", "c:ratio"}


@pytest.mark.parametrize("directory", ["deploy/k8s/base", "deploy/k8s/gpu"])
def test_every_deployment_carries_the_scrape_annotations_of_its_metrics_port(
    kustomize: Callable[[str], list[Config]], prometheus_config: Config, directory: str
) -> None:
    """The ports Prometheus scrapes in compose; each one a port its container declares and its settings listen on."""
    resources = kustomize(directory)
    config_map = next(r for r in resources if r["kind"] == "ConfigMap")["data"]
    deployments = {r["metadata"]["name"]: r for r in resources if r["kind"] == "Deployment"}
    jobs = scrape_jobs(prometheus_config)
    assert set(deployments) == set(jobs)
    for name, (_, port, path) in jobs.items():
        pod = deployments[name]["spec"]["template"]
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(port), name
        assert annotations["prometheus.io/path"] == path, name
        (container,) = pod["spec"]["containers"]
        assert port in {p["containerPort"] for p in container["ports"]}, name
        prefix = name.upper()
        if f"{prefix}_METRICS_PORT" in config_map:
            assert config_map[f"{prefix}_METRICS_PORT"] == str(port), name
            assert config_map[f"{prefix}_METRICS_HOST"] == "0.0.0.0", name
        else:
            assert config_map[f"{prefix}_PORT"] == str(port), name


@pytest.mark.parametrize("target", ["up", "logs", "ps", "build", "down"])
def test_make_docker_targets_add_the_monitoring_profile_with_monitoring_1(target: str) -> None:
    def commands(*variables: str) -> str:
        result = subprocess.run(
            ["make", "-n", target, *variables], capture_output=True, text=True, cwd=REPO_ROOT, check=False
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    plain, monitoring = commands("MONITORING=", "GPU="), commands("MONITORING=1", "GPU=1")
    assert "-f docker-compose.yml -f docker-compose.gpu.yml --profile monitoring" in monitoring
    if target == "down":  # without the profile, `down` would leave Prometheus and Grafana running
        assert "--profile monitoring down" in plain
    else:
        assert "--profile" not in plain


def test_make_compose_config_validates_the_monitoring_profile() -> None:
    result = subprocess.run(
        ["make", "-n", "compose-config"], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--profile monitoring config --quiet" in result.stdout
