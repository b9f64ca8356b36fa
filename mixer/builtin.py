"""Built-in demo data: real text that every Python environment with mixer already has.

- `python`:   the standard library's source files
- `cpp`:      C/C++ headers shipped inside installed packages (torch's, numpy's, ...)
- `docs`:     the Python reference topics in `pydoc_data` and installed packages' READMEs
- `licenses`: licence files of installed packages

Nothing is downloaded. Files are read in sorted order, so a domain built here is the same
on every machine with the same environment.
"""

from __future__ import annotations

import importlib.metadata
import site
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from mixer.errors import MixerError

BUILTINS = ("python", "cpp", "docs", "licenses")
_HEADER_SUFFIXES = {".h", ".hpp", ".hh", ".cuh", ".hxx"}
_LICENSE_PREFIXES = ("license", "licence", "copying", "notice")


def _site_dirs() -> list[Path]:
    dirs = {Path(p) for p in site.getsitepackages() + [site.getusersitepackages()]}
    dirs.add(Path(sysconfig.get_paths()["purelib"]))
    return sorted(d for d in dirs if d.is_dir())


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    return text if text.strip() else None


def _python_sources() -> Iterator[tuple[str, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        parts = set(path.relative_to(stdlib).parts)
        if "site-packages" in parts or "__pycache__" in parts:
            continue
        if (text := _read(path)) is not None:
            yield str(path), text


def _cpp_headers() -> Iterator[tuple[str, str]]:
    for root in _site_dirs():
        for path in sorted(root.rglob("*")):
            if path.suffix in _HEADER_SUFFIXES and path.is_file():
                if (text := _read(path)) is not None:
                    yield str(path), text


def _docs() -> Iterator[tuple[str, str]]:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        topics = {}
    for name in sorted(topics):
        yield f"pydoc_data:{name}", topics[name]
    for dist in sorted(importlib.metadata.distributions(), key=lambda d: d.metadata["Name"] or ""):
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""
        if isinstance(body, str) and len(body.strip()) > 200:
            yield f"readme:{dist.metadata['Name']}", body


def _licenses() -> Iterator[tuple[str, str]]:
    seen: set[Path] = set()
    for root in _site_dirs():
        for info in sorted(root.glob("*.dist-info")):
            for path in sorted(info.rglob("*")):
                if path.is_file() and path.name.lower().startswith(_LICENSE_PREFIXES) and path not in seen:
                    seen.add(path)
                    if (text := _read(path)) is not None:
                        yield str(path), text


_READERS = {"python": _python_sources, "cpp": _cpp_headers, "docs": _docs, "licenses": _licenses}


def builtin_documents(name: str, max_bytes: int | None = None) -> Iterator[tuple[str, str]]:
    """(source, text) pairs of a built-in domain, stopping after about `max_bytes`."""
    if name not in _READERS:
        raise MixerError(f"unknown built-in source '{name}' (choose from {', '.join(BUILTINS)})")
    total = 0
    found = False
    for source, text in _READERS[name]():
        found = True
        yield source, text
        total += len(text)
        if max_bytes is not None and total >= max_bytes:
            return
    if not found:
        raise MixerError(f"built-in source '{name}' found no files in this environment")
