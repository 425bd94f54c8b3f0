"""The clock's state, measured rather than claimed: what the kernel says of its synchronisation
(adjtimex: the unsynchronised flag, the estimated error and the offset being corrected), and steps
of the wall clock seen against the monotonic clock; and what the NTP daemon (chrony, or else
systemd-timesyncd) says of its source, where one answers. Recorded with each checkpoint, so a
package can say what was measured when its hits were received."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import re
import shutil
import signal
import subprocess
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


# The NTP daemon's own view, where one answers: chrony (`chronyc -c tracking`) or, without it,
# systemd-timesyncd (`timedatectl show-timesync --all`). Each asked with a deadline; whatever goes
# wrong (no binary, a hang, a failure, output not of the documented form) gives no source and a
# short reason, never an exception.
NTP_TIMEOUT_S = 2.0  # for both tools together: the most a checkpoint waits on them
_DETAIL = 80  # characters of a tool's own message kept in a reason
LEAP = {0: "Normal", 1: "Insert second", 2: "Delete second", 3: "Not synchronised"}  # NTP's leap indicator


class _NoAnswer(Exception):
    """A tool that gave no usable answer; the text is the reason recorded."""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL else text[:_DETAIL - 1] + "…"


def _run(tool: str, args: list[str], timeout: float) -> str:
    """The tool's standard output, or _NoAnswer: not on PATH, past `timeout` (it and its children
    are killed: it runs in its own process group), or a non-zero exit."""
    path = shutil.which(tool)
    if path is None:
        raise _NoAnswer("not found on PATH")
    if timeout <= 0:
        raise _NoAnswer("not asked: no time left")
    env = {**os.environ, "LC_ALL": "C"}  # the documented, unlocalised forms (e.g. "us", not "µs")
    try:
        with subprocess.Popen([path, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, start_new_session=True) as process:
            try:
                out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                process.wait()
                raise _NoAnswer(f"no answer within {timeout:.1f} s") from None
    except OSError as error:
        raise _NoAnswer(_short(f"could not run: {error}")) from None
    if process.returncode != 0:
        said = _short((err or out).decode("utf-8", "replace"))
        raise _NoAnswer(f"exit {process.returncode}" + (f": {said}" if said else ""))
    return out.decode("utf-8", "replace")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def parse_chronyc_tracking(csv_text: str) -> dict:
    """`chronyc -c tracking`: one line of 14 comma-separated fields (reference ID in hex, the
    source's address or a reference clock's name, stratum, reference time in seconds since the
    epoch, system time, last offset, RMS offset, frequency, residual frequency, skew, root delay,
    root dispersion, update interval, leap status). "System time" is chronyd's current correction:
    positive when the system clock is behind NTP time, so it is kept as offset_s = NTP time minus
    the system clock. ValueError if the text is not of that form."""
    lines = [line for line in csv_text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ValueError(f"{len(lines)} lines, not 1")
    fields = lines[0].strip().split(",")
    if len(fields) != 14:
        raise ValueError(f"{len(fields)} fields, not 14")
    ref_id, name, stratum, ref_time, offset, _last, _rms, _freq, _resid, _skew, delay, dispersion, _interval, leap = fields
    if not re.fullmatch(r"[0-9A-Fa-f]{8}", ref_id):
        raise ValueError(f"reference ID {ref_id!r}")
    if leap not in LEAP.values():
        raise ValueError(f"leap status {leap!r}")
    return {"daemon": "chrony", "source": name or None, "server_name": None, "ref_id": ref_id.upper(),
            "stratum": int(stratum), "ref_time": _finite(ref_time) or None, "offset_s": _finite(offset),
            "root_delay_s": _finite(delay), "root_dispersion_s": _finite(dispersion), "leap": leap}


_SPAN_UNITS = {"us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}


def _timespan(text: str) -> float | None:
    """systemd's printed time span ("1.678ms", "15us", "1min 2.5s", "0") in seconds; None if odd."""
    total = 0.0
    for part in text.split():
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zµμ]*)", part)
        if not match or (match[2] not in _SPAN_UNITS and not (match[2] == "" and part == "0")):
            return None
        total += float(match[1]) * _SPAN_UNITS.get(match[2], 0.0)
    return total if text.split() else None


def parse_timedatectl_timesync(text: str) -> dict:
    """`timedatectl show-timesync --all`: Name=value lines. ServerName and ServerAddress say whom
    timesyncd uses (empty before it picked one); NTPMessage (present once a packet was received)
    is "{ Leap=0, Version=4, Mode=4, Stratum=2, ..., RootDelay=..., RootDispersion=..., ... }".
    The offset is not in this output (its timestamps are printed to the second), so offset_s is
    None. ValueError if the text is not of that form."""
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if "ServerName" not in props:
        raise ValueError("no ServerName property")
    message: dict[str, str] = {}
    raw = props.get("NTPMessage", "").strip()
    if raw:
        if not (raw.startswith("{") and raw.endswith("}")):
            raise ValueError("NTPMessage is not { ... }")
        message = dict(item.strip().split("=", 1) for item in raw[1:-1].split(",") if "=" in item)
    leap = message.get("Leap")
    return {"daemon": "systemd-timesyncd", "source": props.get("ServerAddress") or None,
            "server_name": props["ServerName"] or None, "ref_id": message.get("Reference") or None,
            "stratum": int(message["Stratum"]) if "Stratum" in message else None, "ref_time": None,
            "offset_s": None, "root_delay_s": _timespan(message.get("RootDelay", "")),
            "root_dispersion_s": _timespan(message.get("RootDispersion", "")),
            "leap": None if leap is None else LEAP.get(int(leap), f"Invalid ({leap})")}


def ntp_source(timeout: float = NTP_TIMEOUT_S) -> dict:
    """{"ntp": what chrony, or else systemd-timesyncd, says of its source, "ntp_problem": None},
    or {"ntp": None, "ntp_problem": why neither answered}. Both together take at most `timeout`."""
    deadline = time.monotonic() + timeout
    problems = []
    for tool, args, parse in (("chronyc", ["-c", "tracking"], parse_chronyc_tracking),
                              ("timedatectl", ["show-timesync", "--all"], parse_timedatectl_timesync)):
        try:
            out = _run(tool, args, deadline - time.monotonic())
            try:
                return {"ntp": parse(out), "ntp_problem": None}
            except (ValueError, KeyError, TypeError) as error:
                raise _NoAnswer(_short(f"unexpected output ({error})")) from None
        except _NoAnswer as reason:
            problems.append(f"{tool}: {reason}")
    return {"ntp": None, "ntp_problem": "; ".join(problems)}


def clock_state(watch: StepWatch) -> dict:
    """What a checkpoint records of the clock: the kernel's view, any step since the last one, and
    the NTP daemon's source (ntp_source: blocks for at most NTP_TIMEOUT_S, in a subprocess)."""
    step = watch.since_last()
    return {**kernel_clock(), "stepped_s": round(step, 6) if abs(step) > STEP_S else 0.0, **ntp_source()}
