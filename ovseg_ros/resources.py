"""Files the ovseg package installs to ``share/ovseg`` (msg/, config/, launch/), wherever they are.

Found in this order: the ament index (a colcon install or a ROS 2 distro), each prefix of
``AMENT_PREFIX_PATH``, this Python environment's ``share/ovseg`` (tools/setup.sh builds the
interfaces into the venv), and the source tree (an editable install).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["config_file", "share_file"]


def _share_dirs() -> list[Path]:
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("ovseg")))
    except Exception:  # noqa: BLE001 - no ament index, or the package is not in it
        pass
    dirs += [Path(p) / "share" / "ovseg" for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    dirs += [Path(sys.prefix) / "share" / "ovseg", Path(__file__).resolve().parents[1]]
    return dirs


def share_file(relative: str) -> Path | None:
    """``share/ovseg/<relative>`` (e.g. ``config/fastdds_shm.xml``), or None when no copy exists."""
    for d in _share_dirs():
        if (d / relative).exists():
            return d / relative
    return None


def config_file(name: str) -> Path:
    """``config/<name>``: the source tree's copy when running from a checkout (the file being
    edited, not an installed copy of an older one), else :func:`share_file`'s."""
    here = Path(__file__).resolve().parents[1] / "config" / name
    found = here if here.is_file() else share_file(f"config/{name}")
    if found is None:
        raise FileNotFoundError(f"config/{name}: neither in the source tree nor installed (share/ovseg)")
    return found
