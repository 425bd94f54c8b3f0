"""The `seized` command line as the tests run it: one subprocess helper, and one reading of what a
failing command said (typer draws its errors in a box, wrapped at the terminal's width)."""

from __future__ import annotations

import re
import subprocess
import sys

BOX = re.compile(r"[\u2500-\u257f]")  # box-drawing characters


def seized(*args, check: bool = True, text: bool = True, cwd=None) -> subprocess.CompletedProcess:
    """`python -m app ARGS...` with its output captured. `check`: a nonzero exit fails the test,
    showing what the command printed. `text=False` keeps stdout as bytes (CSV's CRLF as sent)."""
    result = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=text, cwd=cwd)
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
