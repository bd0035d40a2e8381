"""Server processes that end with the process that started them.

A test run (or bench/desk_load.py) killed with SIGKILL runs no teardown: the `securecomm serve` processes it
started would live on, orphaned, holding their ports and a share of the machine. On Linux the child asks
the kernel for SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG), set between fork and exec; SIGTERM
rather than SIGKILL, so that the server shuts down as it always does and ends its own children (uvicorn's
workers, the lab's job worker) on the way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen that makes the child receive SIGTERM when this process dies
    (None where the kernel has no such request: not Linux). libc is looked up here, in the parent: the
    child, between fork and exec, only makes the call."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    parent = os.getpid()

    def in_child() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request was made: nobody will send it
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child
