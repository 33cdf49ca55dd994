"""Values and messages cut to a readable length, for error messages: a bad
input may be a 50 MB string or a million-item list, and its message must
stay a line."""

from __future__ import annotations

from typing import Any

#: At most this many characters of a value (a key, a tag) in a message, and
#: of a message's parts.
BRIEF = 40
MESSAGE = 200


def brief(value: Any, limit: int = BRIEF) -> str:
    """``repr(value)``, cut to about ``limit`` characters (without building
    the whole repr of a long string)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


def cap(message: str, limit: int = MESSAGE) -> str:
    """``message``, cut to ``limit`` characters."""
    return message if len(message) <= limit else message[: limit - 3] + "..."
