"""The `seized` command line as the tests run it: one subprocess helper, and one reading of what a
failing command said (typer draws its errors in a box, wrapped at the terminal's width)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

BOX = re.compile(r"[\u2500-\u257f]")  # box-drawing characters


def seized(*args, check: bool = True, text: bool = True, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m app ARGS...` with its output captured. `check`: a nonzero exit fails the test,
    showing what the command printed. `text=False` keeps stdout as bytes (CSV's CRLF as sent). A
    command still running after `timeout` seconds fails the test with its Python stacks (faulthandler)."""
    command = [sys.executable, "-m", "app", *args]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=text, cwd=cwd, env={**os.environ, "PYTHONFAULTHANDLER": "1"}) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack to stderr
            stdout, stderr = process.communicate()
            raise AssertionError(f"seized {' '.join(map(str, args))} still running after {timeout} s:\n{stderr}") from None
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise AssertionError(f"seized {' '.join(map(str, args))} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def said(result: subprocess.CompletedProcess) -> str:
    """stderr then stdout as one line of words: box drawing removed, wrapped lines joined."""
    out = [stream if isinstance(stream, str) else stream.decode("utf-8", "replace")
           for stream in (result.stderr, result.stdout)]
    return " ".join(BOX.sub(" ", "\n".join(out)).split())


def fails(*args, exit_code: int | None = None) -> str:
    """Run a command that must fail; return what it said (see `said`)."""
    result = seized(*args, check=False)
    if exit_code is None:
        assert result.returncode != 0, f"seized {' '.join(map(str, args))} succeeded:\n{result.stdout}"
    else:
        assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
    return said(result)
