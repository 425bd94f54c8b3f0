"""The clock's state, measured rather than claimed: what the kernel says of its synchronisation
(adjtimex: the unsynchronised flag, the estimated error and the offset being corrected), and steps
of the wall clock seen against the monotonic clock. Recorded with each checkpoint, so a package can
say what was measured when its hits were received."""

from __future__ import annotations

import ctypes
import ctypes.util
import time

STA_UNSYNC = 0x0040  # the kernel's "clock not synchronised" status bit (include/uapi/linux/timex.h)
TIME_ERROR = 5  # adjtimex's return value when the clock is not synchronised
STEP_S = 1.0  # a change of wall minus monotonic larger than this is a step, not slewing


class _Timex(ctypes.Structure):
    """struct timex (Linux, 64-bit longs): the fields read here, then room for the rest."""
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("rest", ctypes.c_long * 20)]


def kernel_clock() -> dict:
    """{"synchronised", "est_error_us", "max_error_us", "offset_us"} from adjtimex (read only:
    modes 0); all None where the call is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        state = -1
    if state < 0:
        return {"synchronised": None, "est_error_us": None, "max_error_us": None, "offset_us": None}
    return {"synchronised": state != TIME_ERROR and not timex.status & STA_UNSYNC,
            "est_error_us": timex.esterror, "max_error_us": timex.maxerror, "offset_us": timex.offset}


class StepWatch:
    """Wall clock against the monotonic clock: their difference only moves when the wall clock is
    set (a step) or slewed (slowly). `since_last()` gives the largest step since it was last asked."""

    def __init__(self):
        self.base = time.time() - time.monotonic()

    def since_last(self) -> float:
        now = time.time() - time.monotonic()
        step, self.base = now - self.base, now
        return step


def clock_state(watch: StepWatch) -> dict:
    """What a checkpoint records of the clock: the kernel's view, and any step since the last one."""
    step = watch.since_last()
    return {**kernel_clock(), "stepped_s": round(step, 6) if abs(step) > STEP_S else 0.0}
