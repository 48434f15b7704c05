"""Test-only fault injection for the reliability suite (tests/reliability): inert unless set.

`EVALS_FAULT=SITE:WHEN[:ACTION]` makes `fault_point(SITE, name)` fire once in this process, at the
WHEN-th call for that site (a number) or at the call whose `name` equals WHEN. Sites: `commit`
(just after a completion is committed to the cache), `score` (before a row is scored) and `write`
(a run directory file written aside, before it is renamed into place; `name` is the file name).
ACTION `kill` (the default) sends SIGKILL to this process; `enospc` raises OSError(ENOSPC), a full
disk. Without the variable `fault_point` returns at once and does nothing else; it is never set
outside tests.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "EVALS_FAULT"
_calls: dict[str, int] = {}


_ARMED = ENV in os.environ  # read once: a child process is started with the variable set


def fault_point(site: str, name: str = "") -> None:
    if not _ARMED:
        return
    spec = os.environ.get(ENV)
    if not spec:
        return
    want_site, _, rest = spec.partition(":")
    if want_site != site:
        return
    when, _, action = rest.partition(":")
    _calls[site] = _calls.get(site, 0) + 1
    if when != name and not (when.isdigit() and int(when) == _calls[site]):
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, f"No space left on device (injected by {ENV}) at {site} {name}".strip())
    os.kill(os.getpid(), signal.SIGKILL)
