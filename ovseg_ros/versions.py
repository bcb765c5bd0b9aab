"""Vocabulary version numbers that never name two different vocabularies.

A consumer may cache class names by version and outlive the node (or the node's configuration),
so a version must not come back after cleanup -> configure or after a restart. Each new version
is the largest of

- the previous version of this process + 1,
- the wall clock in whole seconds since :data:`EPOCH` (2026-01-01 UTC; a uint32 lasts until
  2162), so a restarted node starts above everything an earlier run issued unless that run
  issued more than one version per second on average,
- the high-water mark kept in a state file (``$ROS_HOME/ovseg/vocabulary_version``, ``ROS_HOME``
  defaulting to ``~/.ros`` as for every ROS 2 tool), + 1, which covers bursts of changes and a
  clock that steps back, wherever that file survives the restart.

Versions therefore increase with every change, also across reconfigures and restarts; the only
way to see a number twice is to lose the state file *and* restart within the seconds a burst of
changes ran ahead of the clock (or with a clock set back). The file is shared by every ovseg node
of the user on the machine (locked while read and written), which keeps versions distinct between
those nodes too. Where it cannot be written the clock alone is used and :attr:`warning` says why.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

__all__ = ["EPOCH", "MAX_VERSION", "VersionCounter", "default_state_file"]

#: 2026-01-01T00:00:00Z: versions are at least the seconds since then
EPOCH = 1767225600
#: the version fields are uint32
MAX_VERSION = 2**32 - 1


def default_state_file() -> Path:
    """``$ROS_HOME/ovseg/vocabulary_version`` (``ROS_HOME`` defaults to ``~/.ros``)."""
    home = os.environ.get("ROS_HOME") or os.path.join(os.path.expanduser("~"), ".ros")
    return Path(home) / "ovseg" / "vocabulary_version"


class VersionCounter:
    """Issues increasing vocabulary versions (see the module docstring). Thread-safe."""

    def __init__(self, state_file: str | Path | None = None, *, clock=time.time):
        self.state_file = Path(state_file) if state_file is not None else default_state_file()
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()
        self.warning = ""

    @property
    def last(self) -> int:
        """The last version issued by this counter (0 before the first)."""
        return self._last

    def next(self) -> int:
        with self._lock:
            floor = max(self._last + 1, int(self._clock()) - EPOCH)
            try:
                version = self._next_persisted(floor)
            except OSError as e:
                self.warning = (
                    f"vocabulary versions rest on the clock alone: cannot update {self.state_file} "
                    f"({e.strerror or e}); set ROS_HOME to a writable folder"
                )
                version = floor
            if version > MAX_VERSION:
                raise OverflowError(f"vocabulary version {version} exceeds uint32: remove {self.state_file}")
            self._last = version
            return version

    def _next_persisted(self, floor: int) -> int:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # other ovseg processes wait: read-increment-write is atomic
            raw = os.read(fd, 64).decode("ascii", "replace").strip()
            stored = int(raw) if raw.isdigit() else 0
            version = max(floor, stored + 1)
            data = f"{version}\n".encode()
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, data)
            os.fsync(fd)
            return version
        finally:
            os.close(fd)  # also releases the lock
