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
