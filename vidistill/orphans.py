"""Worker processes that end with the process that started them.

A pool worker blocked on its task pipe outlives a parent killed with SIGKILL (the parent cannot
clean up): it finishes its step, then waits forever, holding its memory. A worker calls
`exit_with_parent` first thing (a pool's initializer): on Linux the kernel sends it SIGKILL when
its parent dies (prctl PR_SET_PDEATHSIG), and on every platform a daemon thread ends it when its
parent is gone (the parent pid changes when the process is re-parented).
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
EXIT_PARENT_GONE = 70  # What a worker whose parent died exits with (if the signal did not end it).


def exit_with_parent(parent_pid: int | None = None, poll_s: float = 0.5) -> None:
  """Ends this process when its parent dies.

  parent_pid: the parent's pid as the parent saw it (os.getpid() there), to catch a parent that
    died before this call; None: the current parent.
  """
  if sys.platform.startswith("linux"):
    try:
      libc = ctypes.CDLL(None, use_errno=True)
      libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
      pass  # No prctl (an unusual libc): the watch below still ends the process.
  parent = os.getppid() if parent_pid is None else parent_pid
  if os.getppid() != parent:  # Died before the death signal was armed.
    os._exit(EXIT_PARENT_GONE)
  threading.Thread(target=_watch, args=(parent, poll_s), name="exit-with-parent",
                   daemon=True).start()


def _watch(parent: int, poll_s: float) -> None:
  while os.getppid() == parent:
    time.sleep(poll_s)
  # No cleanup on purpose: the parent that would read this worker's results is gone, and
  # nothing the worker writes may claim otherwise (the step's DONE is the parent's to write).
  os._exit(EXIT_PARENT_GONE)
