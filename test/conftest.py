"""Suite-wide set-up: the test folder on sys.path so tests import ``shared_data``."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
