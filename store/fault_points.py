"""Named fault points: a real crash at a chosen point, for the crash-safety tests.

Off unless ``$BAHFS_FAULT`` is set (then a dictionary update per point reached).
``BAHFS_FAULT=<point>:<n>`` (several, comma separated) makes the process that
reaches ``point`` for the ``n``-th time kill **its whole process group** with
SIGKILL: the main process, its Dask workers and the temporary Prefect server all
die at once, as in a power cut, and no cleanup code runs. Run a faulted command in
a process group of its own (``setsid``, or ``start_new_session=True`` in
``subprocess``), never in the group of the caller. ``<point>:<n>:stop`` instead
stops that one process (SIGSTOP) until it is sent SIGCONT, so that a test can run
something else at exactly that moment (a purge racing an extraction). Hits are
counted per process (a Dask worker counts its own). ``tests/flows/test_kill.py``
and ``tests/flows/test_real_faults.py`` use them.

Points:

* ``ingest``: a batch was read and its videos probed; no table written yet;
* ``video``: a video's job starts (``flows.job.run_video``), before it claims the
  video: this process holds nothing open in the store;
* ``replace.parquet`` / ``replace.json``: a table (or Zarr metadata) file was
  written to its temporary name and synced, not yet renamed over the old one;
* ``staged``: a video's arrays are written in staging, not yet synced;
* ``rename``: the staged video is synced, not yet renamed into place (published);
* ``published``: one feature set of a video is published (the video's next feature
  set, or the next video, not yet).
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

from store.errors import ConfigError

FAULT_ENV = "BAHFS_FAULT"
POINTS = ("ingest", "video", "replace.parquet", "replace.json", "staged", "rename",
          "published")
_hits: Counter[str] = Counter()


def _plan(spec: str) -> dict[tuple[str, int], str]:
    """``{(point, n): action}`` from the value of ``$BAHFS_FAULT``."""
    plan: dict[tuple[str, int], str] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        point, _, nth = item.partition(":")
        nth, _, action = nth.partition(":")
        if point not in POINTS or not nth.isdigit() or int(nth) < 1 \
                or action not in ("", "kill", "stop"):
            raise ConfigError(f"bad {FAULT_ENV} item {item!r}",
                              expected=f"<point>:<n >= 1>[:stop], point one of "
                                       f"{', '.join(POINTS)}")
        plan[(point, int(nth))] = action or "kill"
    return plan


def fault_point(name: str) -> None:
    """Kill this process group (or stop this process) here if ``$BAHFS_FAULT`` asks
    for this hit of ``name``."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    _hits[name] += 1
    action = _plan(spec).get((name, _hits[name]))
    if action == "kill":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    elif action == "stop":
        # sent to this thread, so that it stops here: sent to the process, the signal
        # may be taken by another thread while this one runs on for a moment
        signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)
