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


def domain_folder(name: str) -> str:
    """The one folder (a single path component) holding domain `name`: a parent's '/'
    becomes '+', which no name holds, so `web/news` is `web+news`."""
    return check_domain_name(name).replace("/", "+")
