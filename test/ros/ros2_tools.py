"""The real ROS 2 command line and launch, for tests (imported as a plain module).

Robots have them from their distro; developers and CI install the wheels with
``tools/install-ros2-client.sh ../shared/ros2-client``. Where they are missing a test that needs
them is skipped with that command in the reason, except in CI (``CI`` set) or with
``OVSEG_REQUIRE_ROS2_TOOLS=1``, where it fails: no launch test may be skipped there.

:func:`ros2_shell` runs a command line as a robot user types it, in a shell where the venv is
activated (``source .venv/bin/activate``: PATH and AMENT_PREFIX_PATH), so the tests check what
the README promises after the setup.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

VENV = Path(sys.prefix)
ACTIVATE = VENV / "bin" / "activate"
MODULES = ("ros2cli", "ros2launch", "launch", "launch_ros", "message_filters")
INSTALL_HINT = "tools/install-ros2-client.sh ../shared/ros2-client"


def tools_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("OVSEG_REQUIRE_ROS2_TOOLS") == "1"


def require_ros2_tools() -> None:
    """Skip (fail in CI) unless the ros2 command line, launch and message_filters are installed."""
    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    if not (VENV / "bin" / "ros2").exists():
        missing.append(f"{VENV}/bin/ros2")
    if not ACTIVATE.exists():
        missing.append(str(ACTIVATE))
    if missing:
        message = f"ROS 2 tools not installed ({', '.join(missing)}): run {INSTALL_HINT}"
        if tools_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def shell_env(domain: int) -> dict:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)  # the child's ROS wheels set up their own library path
    env.pop("AMENT_PREFIX_PATH", None)  # only what activating the venv sets
    env["PYTHONUNBUFFERED"] = "1"
    return env


def shell_line(command: str) -> list[str]:
    return ["bash", "-c", f"source {shlex.quote(str(ACTIVATE))} && {command}"]


def ros2_shell(
    command: str, domain: int, *, timeout: float = 90, cwd: str | Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``command`` (a README line) in a shell with the venv activated, on ROS domain ``domain``."""
    return subprocess.run(
        shell_line(command), env=shell_env(domain), capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def ros2_background(command: str, domain: int, log: Path, *, cwd: str | Path | None = None) -> subprocess.Popen:
    """Start ``command`` (e.g. ``ros2 launch ...``) in its own process group, output to ``log``."""
    out = open(log, "w")  # noqa: SIM115 - closed by stop_background
    proc = subprocess.Popen(
        shell_line(command),
        env=shell_env(domain),
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        start_new_session=True,
    )
    proc.log_file = out  # type: ignore[attr-defined]
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def stop_background(proc: subprocess.Popen, timeout: float = 20) -> int:
    """Ctrl-C the process group this test started (launch passes it to the node), then kill it."""
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    proc.log_file.close()  # type: ignore[attr-defined]
    return proc.returncode
