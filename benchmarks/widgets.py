"""How fast the widgets are built and how fast a slider move is, side by side with the naive way.

Run: ``python -m benchmarks.widgets [--frames 20] [--preset butterflies-cpu]``. Prints, for one
batch of 8 butterflies at 32 px:
- the forward-process widget: build time for 1000 timesteps, memory of its frames, a slider
  move (first visit and cached), the size of its static PNG strip;
- the model view: build time (the model runs once per frame, batched) and a slider move,
  next to what a move would cost if it reran the model (what the widgets avoid).
Figures only: no pass/fail (the tests check behaviour, never timings).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def timed(fn, repeat: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    from diffusers import DDPMScheduler

    import course_utils as cu

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="timesteps of the model view")
    parser.add_argument("--preset", default="butterflies-cpu", help="UNet preset of the model view")
    args = parser.parse_args(argv)

    cu.seed_everything(0)
    x0 = cu.load_butterflies(limit=8).images[:8]
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    print(f"torch threads: {torch.get_num_threads()}, batch {tuple(x0.shape)}")

    w = None

    def build():
        nonlocal w
        w = cu.forward_process_widget(scheduler, x0)

    build_s = timed(build)
    mb = sum(f.nbytes for f in w.panels.values()) / 1e6
    ts = iter(range(1, 1000, 7))
    first_ms = timed(lambda: setattr(w.slider, "value", next(ts)), repeat=20) * 1e3
    back_and_forth = iter([1, 8] * 20)  # both encoded above: every move is a cache hit
    cached_ms = timed(lambda: setattr(w.slider, "value", next(back_and_forth)), repeat=20) * 1e3
    print(f"forward process, 1000 steps: built in {build_s:.2f} s, frames {mb:.1f} MB (uint8), "
          f"slider move {first_ms:.1f} ms first visit / {cached_ms:.1f} ms cached, "
          f"static PNG {len(w.static_png()) / 1e3:.0f} kB")

    model = cu.make_unet(args.preset).eval()
    mv = None

    def build_view():
        nonlocal mv
        mv = cu.model_view_widget(model, scheduler, x0, num_frames=args.frames)

    view_s = timed(build_view)
    values = iter(mv.positions * 20)
    move_ms = timed(lambda: setattr(mv.slider, "value", next(values)), repeat=10) * 1e3
    t = torch.full((len(x0),), 500, dtype=torch.long)
    with torch.no_grad():
        rerun_ms = timed(lambda: model(scheduler.add_noise(x0, torch.randn_like(x0), t), t), repeat=3) * 1e3
    print(f"model view ({args.preset}, {mv.n_frames} frames): built in {view_s:.2f} s; slider move "
          f"{move_ms:.1f} ms precomputed vs {rerun_ms:.0f} ms if it reran the model")


if __name__ == "__main__":
    main()
