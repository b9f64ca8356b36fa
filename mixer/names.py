"""The one rule for names a user gives (domains, searches): letters, digits, '-', '_' or
'.', not starting with '-' or '.', at most 100 characters. Exactly that, so a name is
always a safe single path component and a plain SQL value."""

from __future__ import annotations

import re

from mixer.errors import MixerError

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def check_name(name: str, what: str) -> str:
    """`name` if it follows the rule, else a MixerError naming it (`what`: 'domain', 'search')."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise MixerError(f"bad {what} name {name!r}: use letters, digits, '-', '_' or '.', "
                         "not starting with '-' or '.', at most 100 characters")
    return name


def check_domain_name(name: str, what: str = "domain") -> str:
    """A domain's name is a path of names (`web`, `web/news`: mixer.hierarchy), each part
    following the rule above, at most 200 characters in all; so is a clustering's, the
    parent of its domains."""
    if not isinstance(name, str) or len(name) > 200 or not all(_NAME.fullmatch(p) for p in name.split("/")):
        raise MixerError(f"bad {what} name {name!r}: use names of letters, digits, '-', '_' or '.', not starting "
                         "with '-' or '.', joined by '/' under a parent (web/news), at most 200 characters")
    return name


def check_imported_name(name: str, what: str) -> str:
    """A name from a table a user imports (a weight or metric column): any text, as published
    (`Wikipedia (en)`), but what would break the tool's own syntax: a ',' or '=' (name lists,
    `--target a=0.7`, `--min`), spaces around it (flags strip them), a control character,
    an empty, '.' or '..' part between '/' (a path in an export, a parent in
    mixer.hierarchy), or a name `--target` reads otherwise (`avg`, `worst`)."""
    parts = name.split("/")
    if (not name or name != name.strip() or any(c in name for c in ",=") or any(ord(c) < 32 for c in name)
            or any(p in ("", ".", "..") for p in parts) or name in ("avg", "worst") or name.startswith("worst:")):
        raise MixerError(f"bad {what} name {name!r}: no ',' or '=', no spaces around it, no control characters, no "
                         "empty, '.' or '..' part between '/', and not avg or worst")
    return name


_LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}")


def check_fidelity_label(label: str) -> str:
    """A fidelity label (`1m`, `tiny:2000000`): the name rule, with ':' allowed; it is part
    of run ids and of `--fidelities` lists."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise MixerError(f"bad fidelity label {label!r}: use letters, digits, '-', '_', '.' or ':', not starting "
                         "with '-', '.' or ':', at most 100 characters")
    return label


def domain_folder(name: str) -> str:
    """The one folder (a single path component) holding domain `name`: a parent's '/'
    becomes '+', which no name holds, so `web/news` is `web+news`."""
    return check_domain_name(name).replace("/", "+")
