"""How long does "Introduction to Diffusers" take at full size on a CPU, and do its samples look right?

Runs notebooks/01_introduction_to_diffusers.ipynb top to bottom in a fresh kernel, offline
(``HF_HUB_OFFLINE=1``: the drawn butterflies stand-in, no downloads), without quick mode and with
the GPU hidden (``CUDA_VISIBLE_DEVICES=""``), i.e. exactly what a learner without a GPU runs. It
prints the time of every cell, the total wall time and the CPU time of the kernel, and compares
the wall time with the figure the README states (``docs/figures.json``, section "notebook01_cpu";
``--record RUN`` stores this run's instead).
The executed notebook and the generated sample grid are written to ``--out`` (default: a
temporary folder) so you can look at them.

Run: ``python -m benchmarks.notebook01_cpu`` (10-20 minutes on 2 CPU cores). On a shared, busy
machine the wall time grows; the CPU time does not, much. A benchmark, not a test: it prints
PASS/MISS and exits 0 either way.
"""
from __future__ import annotations

import argparse
import base64
import os
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from tools import figures

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_introduction_to_diffusers.ipynb"


SECTION = "notebook01_cpu"  # the figures' section of docs/figures.json
TARGET_MINUTES = 20  # the brief: the full notebook within 20 minutes on 2 cores


def cell_seconds(cell) -> float | None:
    """Execution time nbclient recorded for a cell (None when it did not run)."""
    timing = cell.metadata.get("execution", {})
    try:
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except KeyError:
        return None
    return (end - start).total_seconds()


def save_pngs(cell, out: Path) -> list[Path]:
    paths = []
    for k, output in enumerate(cell.get("outputs", [])):
        data = output.get("data", {})
        if "image/png" in data:
            path = out / f"{cell.id}-{k}.png"
            path.write_bytes(base64.b64decode(data["image/png"]))
            paths.append(path)
    return paths


def main(argv=None) -> int:
    import nbformat
    from nbclient import NotebookClient

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="where to write the executed notebook and PNGs")
    parser.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in the kernel (OMP_NUM_THREADS). On a machine shared with other "
                             "busy processes, 1 avoids the threads waiting on each other (a 2-thread step can "
                             "take several times longer than a 1-thread one there).")
    parser.add_argument("--record", metavar="RUN",
                        help="store the wall time in docs/figures.json, RUN naming the run (machine, load, date)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="nb01-cpu-"))
    out.mkdir(parents=True, exist_ok=True)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    minutes = figures.load(SECTION)["minutes"]
    os.environ.update(HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    os.environ.pop("COURSE_QUICK", None)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    workdir = out / "run"  # the notebook writes my-pipeline/ and my-train-output/ next to itself
    workdir.mkdir(exist_ok=True)

    client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    nbformat.write(nb, out / "01_introduction_to_diffusers.executed.ipynb")

    print(f"{'cell':20s} {'seconds':>8s}")
    for cell in nb.cells:
        if cell.cell_type == "code":
            seconds = cell_seconds(cell)
            print(f"{cell.id:20s} {seconds if seconds is not None else float('nan'):8.1f}")
    pictures = save_pngs(next(c for c in nb.cells if c.id == "pipeline"), out)
    print(f"wall time {wall / 60:.1f} min, kernel CPU time {cpu / 60:.1f} min "
          f"({os.cpu_count()} cores, kernel threads {args.threads or 'default'}, "
          f"load average now {os.getloadavg()[0]:.1f})")
    print(f"samples: {', '.join(map(str, pictures)) or 'none'}")
    verdict = "PASS" if wall <= 60 * TARGET_MINUTES else "MISS"
    print(f"{verdict}: full-size CPU run in {wall / 60:.1f} min (target {TARGET_MINUTES} min; the README states about "
          f"{minutes} min; a busy machine makes it slower)")
    if args.record:
        figures.record(SECTION, args.record, minutes=round(wall / 60))
        print(f"Recorded in {figures.PATH}; tests/test_figures.py says which sentences no longer match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
