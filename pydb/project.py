"""Where the user's project lives: its root folder and the .pydb/ state folder."""

from __future__ import annotations

import os
from pathlib import Path

_MARKERS = ("atlas.hcl", "schema.hcl")


def project_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above start (default: cwd) holding atlas.hcl or schema.hcl."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).is_file() for marker in _MARKERS):
            return folder
    return here


def state_dir() -> Path:
    """Return the folder for local state: $PYDB_STATE_DIR, else <project>/.pydb."""
    configured = os.environ.get("PYDB_STATE_DIR")
    if configured:
        return Path(configured).resolve()
    return project_root() / ".pydb"
