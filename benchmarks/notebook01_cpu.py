"""How long does "Introduction to Diffusers" take at full size on a CPU, and do its samples look right?

Runs notebooks/01_introduction_to_diffusers.ipynb top to bottom in a fresh kernel, offline
(``HF_HUB_OFFLINE=1``: the drawn butterflies stand-in, no downloads), without quick mode and with
the GPU hidden (``CUDA_VISIBLE_DEVICES=""``), i.e. exactly what a learner without a GPU runs. It
prints the time of every cell, the total wall time and the CPU time of the kernel, and compares
the wall time with the figure the README states (``docs/figures.json``, section "notebook01_cpu";
``--record RUN`` stores this run's instead).
The executed notebook and the pictures of the cells whose text describes what they show
(samples, the DDPM/DDIM comparison, the model view) are written to ``--out`` (default: a temporary
folder) so you can look at them; a measuring cell, appended to the run (never to the notebook file),
prints the figures behind that text: detail and contrast of each DDPM/DDIM panel, and how far the
unclipped prediction of the clean image strays at large t (the model view) against the clipped one.

Run: ``python -m benchmarks.notebook01_cpu`` (10-20 minutes on 2 CPU cores). On a shared, busy
machine the wall time grows; the CPU time does not, much. A benchmark, not a test: it prints
PASS/MISS and exits 0 either way.
"""
from __future__ import annotations

import argparse
import base64
import json
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
VIEWS_SECTION = "notebook01_views"  # what the model view and the DDPM/DDIM comparison showed in that run
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


PICTURE_CELLS = ("pipeline", "samplers", "model-view", "loop")

# Appended to the executed notebook: reads the kernel's `comparison`, `model`, `noise_scheduler`, `xb`.
MEASURE_CELL = """
import json as _json

_figures = {"samplers": {}, "model_view": {}}
for _title, _images in comparison.items():
    _x = _images.clamp(-1, 1)
    _detail = ((_x[..., 1:, :] - _x[..., :-1, :]).abs().mean() + (_x[..., 1:] - _x[..., :-1]).abs().mean()) / 2
    _figures["samplers"][_title] = {"detail": round(float(_detail), 4), "pixel_std": round(float(_x.std()), 4)}
_names = list(comparison)
for _a, _b in zip(_names[0::2], _names[1::2]):
    _figures["samplers"][_a]["mean_abs_diff_to_" + _b.split(",")[0]] = round(float((comparison[_a] - comparison[_b]).abs().mean()), 4)

model.eval()
_x0 = xb[:8]
_noise = torch.randn(_x0.shape, generator=torch.Generator().manual_seed(0)).to(_x0.device)
for _t in (0, 250, 500, 750, 900, 950, 980, 990, 999):
    _tt = torch.full((len(_x0),), _t, device=_x0.device)
    _xt = noise_scheduler.add_noise(_x0, _noise, _tt)
    with torch.no_grad():
        _eps = model(_xt, _tt).sample
    _ab = noise_scheduler.alphas_cumprod.to(_x0.device)[_t]
    _pred = (_xt - (1 - _ab).sqrt() * _eps) / _ab.sqrt()
    _figures["model_view"][_t] = {
        "sqrt_alpha_bar": round(float(_ab.sqrt()), 5),
        "eps_error_rms": round(float((_eps - _noise).pow(2).mean().sqrt()), 4),
        "x0_error_unclipped": round(float((_pred - _x0).abs().mean()), 3),
        "x0_error_clipped": round(float((_pred.clamp(-1, 1) - _x0).abs().mean()), 3),
        "share_outside_unit_range": round(float((_pred.abs() > 1).float().mean()), 3),
        "max_abs": round(float(_pred.abs().max()), 1),
    }
print("MEASURED " + _json.dumps(_figures))
"""


def view_figures(measured: dict) -> dict:
    """The figures the notebook's text states about the model view (unclipped x0 at large t)."""
    view = measured["model_view"]
    return {
        "outside_pct_999": round(100 * view["999"]["share_outside_unit_range"]),
        "outside_pct_950": round(100 * view["950"]["share_outside_unit_range"]),
        "outside_pct_500": round(100 * view["500"]["share_outside_unit_range"]),
        "max_abs_999": round(view["999"]["max_abs"]),
    }


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
    nb.cells.append(nbformat.v4.new_code_cell(MEASURE_CELL))
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
    pictures = [path for c in nb.cells if c.get("id") in PICTURE_CELLS for path in save_pngs(c, out)]
    measured = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    print(measured.strip() or "MEASURED: the measuring cell printed nothing")
    print(f"wall time {wall / 60:.1f} min, kernel CPU time {cpu / 60:.1f} min "
          f"({os.cpu_count()} cores, kernel threads {args.threads or 'default'}, "
          f"load average now {os.getloadavg()[0]:.1f})")
    print(f"pictures: {', '.join(map(str, pictures)) or 'none'}")
    verdict = "PASS" if wall <= 60 * TARGET_MINUTES else "MISS"
    print(f"{verdict}: full-size CPU run in {wall / 60:.1f} min (target {TARGET_MINUTES} min; the README states about "
          f"{minutes} min; a busy machine makes it slower)")
    if args.record:
        training = next((cell_seconds(c) for c in nb.cells if c.get("id") == "training"), None) or 0
        figures.record(SECTION, args.record, minutes=round(wall / 60), training_minutes=round(training / 60))
        if measured.startswith("MEASURED "):
            figures.record(VIEWS_SECTION, args.record, **view_figures(json.loads(measured[len("MEASURED "):])))
        print(f"Recorded in {figures.PATH}; tests/test_figures.py says which sentences no longer match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
