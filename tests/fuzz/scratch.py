"""A scratch directory per fuzz module, removed when the test process ends.

Hypothesis runs a property many times inside one test call, where pytest's tmp_path (one
per test) does not fit; the files here are rewritten for every case.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def scratch_dir(name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"rollback-pm-fuzz-{name}-"))
    atexit.register(shutil.rmtree, path, True)
    return path
