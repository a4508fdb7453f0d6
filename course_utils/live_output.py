"""Run a command and show its output in the notebook as it comes, on any Jupyter kernel.

``subprocess.run`` leaves a child's output on the kernel's own file descriptors: recent ipykernels
forward them into the cell, older ones and some hosted front-ends do not, and the learner watches
a silent cell for minutes. ``run_live`` reads the child's output through a pipe and writes each
piece to ``sys.stdout`` (the cell, in a notebook) as soon as it arrives, carriage returns included,
so progress bars redraw in place as they do in a terminal. Used by the training-script cell of
"Introduction to Diffusers".
"""
from __future__ import annotations

import codecs
import os
import subprocess
import sys
from typing import Sequence


def run_live(command: Sequence[str], check: bool = True, env: dict | None = None) -> int:
    """Run ``command``, copy its stdout and stderr (merged) to ``sys.stdout`` as they come, and
    return its exit status; with ``check`` a non-zero status raises ``CalledProcessError``."""
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")  # a Python child writing to a pipe would buffer its prints
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while chunk := process.stdout.read1(4096):  # whatever has arrived, without waiting for a full buffer
        sys.stdout.write(decoder.decode(chunk))
        sys.stdout.flush()
    sys.stdout.write(decoder.decode(b"", final=True))
    sys.stdout.flush()
    status = process.wait()
    if check and status != 0:
        raise subprocess.CalledProcessError(status, list(command))
    return status
