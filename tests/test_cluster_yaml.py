"""cluster.yaml passes Ray's own config preparation and schema validation, offline.

`ray up` runs `prepare_config` (merge with the AWS defaults, node type limits)
and `validate_config` (ray-schema.json plus cross-field checks) before it talks
to AWS; both run here with no credentials and no network. The rest checks what
raymia needs from the cluster: a head that runs no trials, GPU workers that
autoscale from zero, the project installed, shared storage for results, and no
dashboard open to the internet.
"""
import copy
import ipaddress
import re
import socket
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_YAML = ROOT / "cluster.yaml"
DASHBOARD_PORT = 8265
SHARED = "/mnt/raymia"


@pytest.fixture
def offline(monkeypatch):
    """No AWS credentials and no network: any connection attempt fails the test."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")

    def refuse(*args, **kwargs):
        raise AssertionError(f"cluster config preparation tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def raw():
    with open(CLUSTER_YAML) as f:
        return yaml.safe_load(f)


def prepared(config: dict) -> dict:
    """What `ray up` does before its first AWS call: prepare, then validate."""
    config = prepare_config(copy.deepcopy(config))
    validate_config(config)
    return config


@pytest.fixture
def config(raw, offline):
    return prepared(raw)


def world_open(rule: dict) -> bool:
    ranges = [r.get("CidrIp") for r in rule.get("IpRanges", [])]
    ranges += [r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])]
    return any(ipaddress.ip_network(r).prefixlen == 0 for r in ranges if r)


def covers(rule: dict, port: int) -> bool:
    if str(rule.get("IpProtocol")) == "-1":
        return True
    low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
    return low == -1 or low <= port <= high


def dashboard_exposures(config: dict) -> list[str]:
    """Ingress rules in the config that open the dashboard port to any address,
    and start commands that bind the dashboard to every interface."""
    found = []
    rules = config["provider"].get("security_group", {}).get("IpPermissions", [])
    found += [f"rule {r}" for r in rules if world_open(r) and covers(r, DASHBOARD_PORT)]
    for cmd in config["head_start_ray_commands"]:
        host = re.search(r"--dashboard-host[= ](\S+)", cmd)
        if host and host.group(1) in ("0.0.0.0", "::", "[::]"):
            found.append(f"command {cmd!r}")
    return found


def test_ray_prepares_and_validates_the_file_offline(config):
    assert config["cluster_name"] == "raymia"
    assert config["provider"]["type"] == "aws"
    assert config["provider"]["region"]
    assert config["max_workers"] >= 1
    assert config["idle_timeout_minutes"] > 0


def test_every_node_type_declares_integer_resources(raw, config):
    for node_types in (raw["available_node_types"], config["available_node_types"]):
        for name, node_type in node_types.items():
            resources = node_type.get("resources")
            assert resources, f"{name} has no explicit resources"
            assert all(type(v) is int and v >= 0 for v in resources.values()), (name, resources)
            assert "CPU" in resources, name


def test_head_runs_no_trials(config):
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"]["CPU"] == 0
    assert head["resources"].get("GPU", 0) == 0
    assert head["max_workers"] == 0


def test_gpu_workers_autoscale_from_zero(config):
    workers = {n: t for n, t in config["available_node_types"].items()
               if n != config["head_node_type"]}
    gpu = {n: t for n, t in workers.items() if t["resources"].get("GPU", 0) >= 1}
    assert gpu, "no worker node type declares a GPU"
    for name, node_type in gpu.items():
        assert node_type["min_workers"] == 0, name
        assert node_type["max_workers"] >= 1, name
        assert node_type["max_workers"] <= config["max_workers"], name
        assert node_type["resources"]["CPU"] >= 1, name
        assert node_type["node_config"]["InstanceType"].split(".")[0] in ("g4dn", "g5", "g6", "g6e",
                                                                         "p3", "p4d", "p5"), name


def test_runtime_matches_the_project(config):
    image = config["docker"]["image"]
    assert re.fullmatch(r"rayproject/ray:\d+\.\d+\.\d+-py311-gpu", image), image
    # the project is copied from the repository root and installed on every node
    assert config["file_mounts"] == {"~/raymia": "."}
    for setup in (config["head_setup_commands"], config["worker_setup_commands"]):
        assert any(re.search(r"pip install .*-e ~/raymia\b", c) for c in setup), setup


def test_every_node_mounts_the_shared_results_storage(config):
    assert any("mount" in c and SHARED in c and "nfs" in c
               for c in config["initialization_commands"])
    options = " ".join(config["docker"]["run_options"])
    assert f"-v {SHARED}:{SHARED}" in options
    assert f"RAYMIA_DATA={SHARED}/data" in options


def test_dashboard_is_not_open_to_the_internet(config):
    assert dashboard_exposures(config) == []
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start


def test_the_exposure_check_catches_an_open_dashboard(raw, offline):
    bad = copy.deepcopy(raw)
    bad["provider"]["security_group"] = {"IpPermissions": [
        {"FromPort": 8000, "ToPort": 9000, "IpProtocol": "tcp",
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}
    bad["head_start_ray_commands"] = [c.replace("--dashboard-host=127.0.0.1",
                                                "--dashboard-host=0.0.0.0")
                                      for c in bad["head_start_ray_commands"]]
    assert len(dashboard_exposures(prepared(bad))) == 2


@pytest.mark.parametrize("mutate, error", [
    (lambda c: c.update(unknown_top_level_key=1), jsonschema.ValidationError),
    (lambda c: c.update(max_workers="eight"), jsonschema.ValidationError),
    (lambda c: c["available_node_types"]["worker_gpu"]["resources"].update(GPU=0.5),
     jsonschema.ValidationError),
    (lambda c: c["available_node_types"]["worker_gpu"].pop("resources"),
     jsonschema.ValidationError),
    (lambda c: c.update(head_node_type="no_such_type"), ValueError),
], ids=["unknown-key", "wrong-type", "fractional-resource", "missing-resources", "bad-head"])
def test_ray_rejects_a_broken_config(raw, offline, mutate, error):
    bad = copy.deepcopy(raw)
    mutate(bad)
    with pytest.raises(error):
        prepared(bad)
