"""The lock that serialises the calls on one stateful object (an optimizer,
a PolyakAverage): a re-entrant lock per object (``_core.Lock``: an RLock
that a small step takes in Rust, without a call into Python), made new in a
forked child, where a lock held by one of the parent's threads (one that
was inside a step) would never be released."""

from __future__ import annotations

import os
import weakref
from typing import Any

from . import _core

_LIVE: weakref.WeakSet = weakref.WeakSet()


def attach_lock(obj: Any) -> None:
    """Gives ``obj`` its ``_lock`` (re-entrant), renewed in forked children."""
    obj._lock = _core.Lock()
    _LIVE.add(obj)


def _renew_locks() -> None:
    for obj in list(_LIVE):
        obj._lock = _core.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks)
