"""Whether the daemon's loops still make progress: what the systemd watchdog is pinged on.

The daemon-wide loops (topology, catalog watch) beat a `Heartbeat` each time round; the node workers
count their passes. `LoopHealth` judges both: a loop stuck on an await that never returns, or an
event loop blocked by a call, stops them.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Heartbeat:
    """The monotonic time a daemon-wide loop last went round."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last = clock()

    def beat(self) -> None:
        self.last = self.clock()


class LoopHealth:
    """Whether the daemon's loops still make progress, from values they update themselves.

    `heartbeat()` is the monotonic time a daemon-wide loop last went round (Heartbeat.last); `passes()` the
    total reconcile passes of all node workers. Before the first pass (still looking for a seed) the
    process is merely starting: systemd's TimeoutStartSec= covers that. After it, healthy while the
    heartbeat is fresh and some reconcile pass happened within `stale_after`; a reconcile loop stuck
    on an await that never returns, or an event loop blocked by a call, stops both (and a blocked
    loop stops this check from running at all)."""

    def __init__(
        self,
        heartbeat: Callable[[], float],
        passes: Callable[[], int],
        stale_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.heartbeat = heartbeat
        self.passes = passes
        self.stale_after = stale_after
        self.clock = clock
        self._last_passes = -1
        self._last_progress = clock()

    def check(self) -> tuple[bool, str]:
        now = self.clock()
        passes = self.passes()
        if passes == 0:
            self._last_progress = now
            return True, "starting"
        if passes != self._last_passes:
            self._last_passes = passes
            self._last_progress = now
        beat_age = now - self.heartbeat()
        if beat_age > self.stale_after:
            return False, f"daemon loops silent for {beat_age:.1f}s"
        progress_age = now - self._last_progress
        if progress_age > self.stale_after:
            return False, f"no reconcile pass for {progress_age:.1f}s"
        return True, "ok"
