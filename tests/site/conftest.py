"""Fixtures for the site tests: one strict build per test session, and a local web server for it."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from siteaudit import REPO


@dataclass(frozen=True)
class Build:
    site_dir: Path
    returncode: int
    log: str


@pytest.fixture(scope="session")
def site_build(tmp_path_factory) -> Build:
    """Run `mkdocs build --strict` once, with the test interpreter's MkDocs, into a temporary dir."""
    site_dir = tmp_path_factory.mktemp("mkdocs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "--config-file",
        str(REPO / "mkdocs.yml"),
        "--site-dir",
        str(site_dir),
    ]
    proc = subprocess.run(
        cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    return Build(site_dir, proc.returncode, proc.stdout + proc.stderr)


@pytest.fixture(scope="session")
def built_site(site_build: Build) -> Path:
    """The directory of the strictly built site (fails every dependent test if the build failed)."""
    if site_build.returncode != 0:
        pytest.fail(
            f"`mkdocs build --strict` failed (exit {site_build.returncode}):\n{site_build.log[-4000:]}"
        )
    return site_build.site_dir


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="session")
def site_url(built_site: Path):
    """Serve the built site on 127.0.0.1 (a free port) for the duration of the session."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
