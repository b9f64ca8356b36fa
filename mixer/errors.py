"""The one exception type a user can cause.

Anything raised as `MixerError` is a problem with the user's input or environment (a bad
file, an unknown domain, a locked database). The CLI prints its message on one line and
exits with code 2; every other exception is a bug and keeps its traceback.
"""


class MixerError(Exception):
    """A user-facing error: the message names the bad thing in the user's words."""
