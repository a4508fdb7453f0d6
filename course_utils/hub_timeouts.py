"""Hub requests that cannot hang: a call to the Hub runs in a worker thread and is given up after a bound.

huggingface_hub's HTTP client waits forever by default (its ``httpx`` client has no timeout), so
an endpoint that accepts a connection and never answers (a stalled mirror, a captive portal, a
dead proxy) would hang the training script before training or, worse, after an hour of it. Used by
the training script's ``--push_to_hub`` (``course_utils.train``: creating the repository before
training, uploading the pipeline after it).

``COURSE_HUB_TIMEOUT`` (seconds, default 60) sets the bound of one request-sized call; an upload
gets that plus one second per 100 kB, so any upload faster than 100 kB/s finishes.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterable

from . import settings

DEFAULT_TIMEOUT = 60.0
UPLOAD_BYTES_PER_SECOND = 100_000  # the slowest upload we wait for


class HubError(Exception):
    """A Hub call failed or did not answer; the message says what to do."""


class HubTimeout(HubError, TimeoutError):
    """The Hub did not answer within the bound; the message says what to do."""


def hub_timeout() -> float:
    """Seconds to wait for one Hub call: ``COURSE_HUB_TIMEOUT`` or 60 (read in settings)."""
    return settings.hub_timeout(DEFAULT_TIMEOUT)


def upload_timeout(files: Iterable[Path]) -> float:
    """The bound of an upload of ``files``: ``hub_timeout()`` plus their size at 100 kB/s."""
    return hub_timeout() + sum(Path(f).stat().st_size for f in files) / UPLOAD_BYTES_PER_SECOND


def bounded(what: str, call: Callable, seconds: float, advice: str):
    """``call()``'s result, or ``HubTimeout`` after ``seconds`` saying ``what`` did not finish and ``advice``.

    The call runs in a daemon thread: when it is given up, it is left behind (Python cannot stop
    a thread) and dies with the process. Its exception, if it raises, is raised here.
    """
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"hub: {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise HubTimeout(f"{what}: the Hub ({_endpoint()}) did not answer within {seconds:.0f} s. {advice}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _endpoint() -> str:
    return settings.hub_endpoint()


def hub_call(function: Callable, *args, **kwargs):
    """``function(*args, **kwargs)`` (a ``huggingface_hub`` call such as ``create_repo`` or ``upload_folder``),
    given up after ``hub_timeout()`` seconds, plus the upload time of ``folder_path``'s files when it has one.

    For the notebooks' own Hub calls: the learner still sees which ``huggingface_hub`` function runs,
    and a Hub that never answers ends the cell with one line that says what to do.
    """
    name = getattr(function, "__name__", "the Hub call")
    seconds = hub_timeout()
    folder = kwargs.get("folder_path")
    if folder is not None:
        seconds = upload_timeout(p for p in Path(folder).rglob("*") if p.is_file())
    advice = ("Your files stay where they are: run the cell again later, or set COURSE_HUB_TIMEOUT "
              "(seconds) to wait longer on a slow connection.")
    return bounded(name, lambda: function(*args, **kwargs), seconds, advice)
