"""Keep the garbage collector off the objects that already exist, for a stretch of work.

At constellation scale a run holds millions of long-lived objects (the contact plan, the
world, the clients' data). The stages that follow (the mission's rounds, the report's
figures) make many short-lived reference cycles, so the cyclic collector runs often, and
each of its full passes would walk every one of those older objects. ``gc.freeze`` moves
them out of its reach for the stretch and ``gc.unfreeze`` hands them back.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Freeze what exists now, until the block ends (nothing, if a caller froze already)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
