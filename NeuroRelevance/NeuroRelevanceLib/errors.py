"""Exceptions raised by NeuroRelevance for input the user can fix."""
from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the cause and the fix. Nothing was changed."""
