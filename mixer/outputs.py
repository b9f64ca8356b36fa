"""Files a command writes for the user (`-o/--output`): checked before any work, written
whole or not at all."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from mixer.errors import MixerError


def check_output(path: Path, suffixes: tuple[str, ...] | None = None) -> Path:
    """`path` if a file can be written there: its folder exists and it is not a folder;
    `suffixes` (lower case, with the dot) limits the file types."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise MixerError(f"-o {path}: use a {', '.join(suffixes[:-1])} or {suffixes[-1]} file name"
                         if len(suffixes) > 1 else f"-o {path}: use a {suffixes[0]} file name")
    if path.is_dir():
        raise MixerError(f"-o {path} is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise MixerError(f"-o {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise MixerError(f"-o {path}: folder {parent} is not writable")
    return path


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` for a temporary file beside `path`, then move it into place: a
    failure or Ctrl-C midway leaves `path` as it was. The temporary keeps the suffix, so
    writers that choose a format by it (matplotlib, pandas) still do."""
    check_output(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise MixerError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
