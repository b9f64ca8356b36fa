"""A workspace: the directory that holds one user's project.

Layout::

    <root>/mixer.duckdb   every domain, search, run and metric
    <root>/domains/<name>/ token shards, document offsets, meta.json
    <root>/runs/<id>/      per-run artefacts (checkpoints, logs)
    <root>/clusterings/<name>/ a clustering's document -> cluster assignment, 2-D projection
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mixer.errors import MixerError
from mixer.names import domain_folder

DEFAULT_WORKSPACE = ".mixer"
ENV_VAR = "MIXER_WORKSPACE"
DB_FILE = "mixer.duckdb"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / DB_FILE

    @property
    def domains_dir(self) -> Path:
        return self.root / "domains"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def clusterings_dir(self) -> Path:
        return self.root / "clusterings"

    def domain_dir(self, name: str) -> Path:
        """The folder of domain `name`; the name is checked, so the path stays inside."""
        return self.domains_dir / domain_folder(name)

    def clustering_dir(self, name: str) -> Path:
        """The folder of clustering `name` (named as the parent of its domains, web/news)."""
        return self.clusterings_dir / domain_folder(name)


def resolve_workspace_path(explicit: str | os.PathLike | None) -> Path:
    """`--workspace`, else `$MIXER_WORKSPACE`, else `./.mixer`."""
    chosen = explicit if explicit else os.environ.get(ENV_VAR) or DEFAULT_WORKSPACE
    return Path(chosen).expanduser().resolve()


def open_workspace(path: str | os.PathLike | None = None, create: bool = True) -> Workspace:
    """Open (and on first use create) a workspace.

    A path that is a file, or a non-empty directory without `mixer.duckdb`, is refused so
    that mixer never scatters its files into somebody else's directory.
    """
    root = resolve_workspace_path(path)
    if root.exists() and not root.is_dir():
        raise MixerError(f"workspace {root} is a file, not a directory")
    if root.is_dir() and not (root / DB_FILE).exists():
        if any(p.name not in ("domains", "runs", "clusterings") for p in root.iterdir()):
            raise MixerError(f"{root} is not a mixer workspace (no {DB_FILE}) and is not empty")
    if not root.exists() and not create:
        raise MixerError(f"workspace {root} does not exist")
    ws = Workspace(root)
    if create:
        for d in (ws.root, ws.domains_dir, ws.runs_dir):
            d.mkdir(parents=True, exist_ok=True)
    return ws
