"""A plain install runs: the wheel, built without a warning and installed in a fresh virtual
environment, serves the notice and its stylesheet from any directory with no SEIZED_* variable
(its templates, static files and language files travel inside the package)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx

from helpers import PROJECT, free_port, wait_for

# What the build reads; copied out so the build leaves nothing in the checkout (build/, egg-info).
SOURCES = ("pyproject.toml", "README.md", "app", "templates", "static")
# pip's own complaint about this machine's pip configuration (extra indexes in folders that do not
# exist), not about the package: the only warning the build output may contain.
HOST_PIP_CONFIG = re.compile(r"WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.")


def clean_env(**extra) -> dict:
    """This environment without any SEIZED_* setting, nor the switch that disables byte-compiling (a
    build warns about it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEIZED_") and k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def build_wheel(tmp_path: Path) -> tuple[Path, str]:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (PROJECT / name).is_dir():
            shutil.copytree(PROJECT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(PROJECT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--verbose", "--wheel-dir", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, env=clean_env(), timeout=600)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-5000:]
    (wheel,) = (tmp_path / "dist").glob("seized-*.whl")
    return wheel, output


def test_the_wheel_installed_in_a_fresh_venv_serves_the_notice_from_anywhere(tmp_path):
    wheel, output = build_wheel(tmp_path)
    warnings = [line for line in HOST_PIP_CONFIG.sub("", output).splitlines() if "warning" in line.lower()]
    assert not warnings, "the build warned:\n" + "\n".join(warnings)
    # Every file under templates/ and static/ (subfolders too) is in the wheel, inside the package.
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("templates", "static"):
        for path in (PROJECT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert f"app/{folder}/{path.relative_to(PROJECT / folder).as_posix()}" in names
    assert "app/notice/languages/en.toml" in names and "app/verifier/verify.js" in names
    # Every module too: a new subpackage missing from pyproject.toml's `packages` fails here.
    modules = {path.relative_to(PROJECT).as_posix() for path in (PROJECT / "app").rglob("*.py")}
    assert modules <= names, f"not in the wheel: {sorted(modules - names)}"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], capture_output=True, text=True,
                             env=clean_env(), timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr

    elsewhere = tmp_path / "elsewhere"  # no templates/, static/ or config here
    elsewhere.mkdir()
    public, admin = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(venv / "bin" / "seized"), "serve", "--public", f"127.0.0.1:{public}", "--admin",
                                    f"127.0.0.1:{admin}", "--node", "wheel-test"],
                                   cwd=elsewhere, stdout=log, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True)
    try:
        def ready():
            assert process.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False
        wait_for(ready, timeout=120, message="the installed seized did not come up")

        notice = httpx.get(f"http://127.0.0.1:{public}/wheel-marker", headers={"Host": "anything.example"}, timeout=30)
        assert notice.status_code == 451 and "/_seized/notice.css" in notice.text, notice.text
        css = httpx.get(f"http://127.0.0.1:{public}/_seized/notice.css", timeout=30)
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and "{" in css.text

        admin_token = (elsewhere / "data" / "initial-admin-token").read_text().strip()
        made = httpx.post(f"http://127.0.0.1:{admin}/api/v1/tokens", headers={"Authorization": f"Bearer {admin_token}"},
                          json={"name": "wheel-investigator", "role": "investigator"}, timeout=30)
        assert made.status_code == 201, made.text
        token = made.json()["token"]  # an admin manages tokens; reading hits is an investigator's job

        def stored():
            hits = httpx.get(f"http://127.0.0.1:{admin}/api/v1/hits", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert hits.status_code == 200, hits.text
            return any(hit["path"] == "/wheel-marker" for hit in hits.json()["items"])
        wait_for(stored, timeout=60, message="the hit was not stored")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
    assert process.returncode == 0, log_path.read_text()
    # The notice came from the installed package, not from this checkout.
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "from app.config import Settings; s = Settings(); "
                            "print(s.templates_dir); print(s.static_dir)"], cwd=elsewhere, capture_output=True, text=True,
                           env=clean_env(), check=True).stdout.split()
    assert all(Path(path).is_relative_to(venv) for path in where), where
