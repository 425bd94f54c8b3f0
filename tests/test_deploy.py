"""The deployment files hold together: the systemd unit passes `systemd-analyze verify` and is
sandboxed; deploy/compose.yaml's services, volumes and health checks agree with each other, with the
Dockerfile and with seized's settings; its nginx config passes `nginx -t` and, run in front of a real
server, delivers PROXY-protocol connections that seized records. `seized healthcheck` against that
server: 0 while it runs, 1 once it is gone."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.config import Settings, load_settings
from helpers import PROJECT, free_port, request, wait_for

DEPLOY = PROJECT / "deploy"
SEIZED_BIN = Path(sys.executable).with_name("seized")
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")  # Debian's nginx loads it; official images build it in


def unit_with_existing_binary(tmp_path: Path) -> Path:
    """The unit as shipped, its ExecStart pointed at this venv's `seized` (verify checks that the
    binary exists; the unit names /opt/seized/bin/seized, where the README installs it)."""
    text = (DEPLOY / "seized.service").read_text()
    assert "ExecStart=/opt/seized/bin/seized serve" in text
    unit = tmp_path / "seized.service"
    unit.write_text(text.replace("/opt/seized/bin/seized", str(SEIZED_BIN)))
    return unit


def test_the_systemd_unit_verifies_and_is_sandboxed(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (`make tools` installs it with Debian's systemd package)")
    unit = unit_with_existing_binary(tmp_path)
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0 and not verified.stdout.strip() and not verified.stderr.strip(), verified
    settings = {}
    for line in unit.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            settings.setdefault(key, []).append(value)
    for key, value in {"ProtectSystem": "strict", "NoNewPrivileges": "yes", "DynamicUser": "yes", "StateDirectory": "seized",
                       "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "KillMode": "mixed",
                       "Environment": "SEIZED_DATA_DIR=/var/lib/seized"}.items():
        assert settings.get(key) == [value], key
    assert "@system-service" in settings["SystemCallFilter"]
    assert settings["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    # systemd's own reading of the sandbox: 0 (locked down) to 10 (none); 'OK' is below 2.
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                              capture_output=True, text=True, timeout=120)
    level = re.search(r"Overall exposure level for seized\.service: ([\d.]+) (\w+)", security.stdout)
    assert level and float(level.group(1)) < 2.0, security.stdout[-2000:]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def environment(service: dict) -> dict[str, str]:
    return {key: str(value) for key, value in service["environment"].items()}


def image_volumes() -> set[str]:
    match = re.search(r"^VOLUME (\[.*\])$", (PROJECT / "Dockerfile").read_text(), re.MULTILINE)
    return set(json.loads(match.group(1)))


def test_the_compose_file_holds_together(compose, monkeypatch):
    services = compose["services"]
    assert set(services) == {"postgres", "seized-1", "seized-2", "nginx"}
    postgres = environment(services["postgres"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    nginx = services["nginx"]
    network = next(iter(compose["networks"]))
    subnet = compose["networks"][network]["ipam"]["config"][0]["subnet"]
    nginx_address = nginx["networks"][network]["ipv4_address"]
    nodes, data_volumes, admin_ports = set(), set(), set()
    for name in ("seized-1", "seized-2"):
        service, env = services[name], environment(services[name])
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == PROJECT / "Dockerfile"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["healthcheck"]["test"][1:3] == ["seized", "healthcheck"]
        assert network in service["networks"]
        # Every SEIZED_* variable names a setting, and seized accepts the lot with the mounted config.
        assert all(key.startswith("SEIZED_") and key[7:].lower() in Settings.model_fields for key in env), env
        mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in service["volumes"]}  # source: target
        for volume in image_volumes():
            assert any(target == volume or target.startswith(volume + "/") for target in mounts.values()), volume
        for source in mounts:
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
            else:
                assert source in compose["volumes"], source
        sources = {target: source for source, target in mounts.items()}
        data_volumes.add(sources["/var/lib/seized"])
        for key, value in {**env, "SEIZED_DB": env["SEIZED_DB"].replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "pw")}.items():
            monkeypatch.setenv(key, value)
        settings = load_settings(DEPLOY / sources["/etc/seized/seized.toml"])
        nodes.add(settings.node)
        assert settings.db == f"postgresql://{postgres['POSTGRES_USER']}:pw@postgres:5432/{postgres['POSTGRES_DB']}"
        assert [str(net) for net in settings.trusted_proxies] == [f"{nginx_address}/32"]
        assert settings.public == ["0.0.0.0:8080"]
        (published,) = service["ports"]
        assert published.startswith("127.0.0.1:") and published.endswith(":8081"), "management on the host's loopback only"
        admin_ports.add(published)
    assert len(nodes) == 2 and len(data_volumes) == 2 and len(admin_ports) == 2, "two nodes, each its own id, data, port"
    assert ipaddress.ip_address(nginx_address) in ipaddress.ip_network(subnet)
    assert {name: dep["condition"] for name, dep in nginx["depends_on"].items()} == {"seized-1": "service_healthy",
                                                                                    "seized-2": "service_healthy"}
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    upstreams = set(re.findall(r"^\s*server (seized-\d):(\d+)", (DEPLOY / "nginx.conf").read_text(), re.MULTILINE))
    assert upstreams == {("seized-1", "8080"), ("seized-2", "8080")}


def local_nginx_config(directory: Path, upstream_port: int, listen_port: int) -> Path:
    """deploy/nginx.conf for this machine: the upstreams on loopback, listening on a free port,
    Debian's stream module loaded, and its files in `directory`."""
    text = (DEPLOY / "nginx.conf").read_text()
    text = re.sub(r"server seized-\d:8080", f"server 127.0.0.1:{upstream_port}", text)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{listen_port};")
    text = text.replace("/dev/stderr", str(directory / "error.log"))
    if STREAM_MODULE.exists():
        text = f"load_module {STREAM_MODULE};\n" + text
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


def nginx(directory: Path, config: Path, *args: str, **kwargs):
    return subprocess.Popen(["nginx", "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log"),
                             "-g", f"pid {directory / 'nginx.pid'}; daemon off;", *args], **kwargs)


@pytest.mark.backends("sqlite")
def test_nginx_from_compose_passes_proxy_protocol_and_healthcheck_follows_the_server(fresh_server, tmp_path):
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (`make tools` installs it)")
    srv = fresh_server(domains=[{"name": "deploy.example"}], trusted_proxies=["127.0.0.1/32"]).start()
    healthcheck = [str(SEIZED_BIN), "healthcheck", "--config", str(srv.config_path), "--timeout", "10"]
    checked = subprocess.run([*healthcheck, "--ready", "--public"], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and checked.stdout.startswith("ok: "), checked

    directory = tmp_path / "nginx"
    directory.mkdir()
    listen = free_port()
    config = local_nginx_config(directory, srv.public_port, listen)
    tested = subprocess.run(["nginx", "-t", "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log"),
                             "-g", f"pid {directory / 'nginx.pid'};"], capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0 and "test is successful" in tested.stderr, tested.stderr
    proxy = nginx(directory, config)
    try:
        def through_nginx():
            try:
                return request(listen, target="/via-nginx", host="deploy.example")
            except OSError:
                return None
        response = wait_for(through_nginx, timeout=60, message="nginx did not pass the request on")
        assert response.status == 451
    finally:
        proxy.terminate()
        proxy.wait(30)
    token = srv.new_token("investigator")
    def stored():
        items = srv.api("GET", "/api/v1/hits", token, params={"path_prefix": "/via-nginx"}).json()["items"]
        return items[0] if items else None
    hit = wait_for(stored, timeout=60, message="the hit through nginx was not stored")
    # The PROXY header was read: the client is the one that connected to nginx, and nginx's own
    # connection is recorded as the TCP peer.
    assert hit["client_ip"] == "127.0.0.1" and hit["client_port"] == response.local_port
    assert hit["peer_ip"] == "127.0.0.1" and hit["peer_port"] not in (None, hit["client_port"])

    assert srv.stop() == 0
    gone = subprocess.run(healthcheck, capture_output=True, text=True, timeout=120)
    assert gone.returncode == 1 and gone.stderr.startswith("unhealthy: "), gone
