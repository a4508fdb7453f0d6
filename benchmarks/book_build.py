"""Build time and size of the reading edition (tools/book.py), with no execution cache.

    python -m benchmarks.book_build            # the quick site (what CI builds)
    python -m benchmarks.book_build --full     # the full site: every notebook at full size (~30 min on 2 CPU cores)
    python -m benchmarks.book_build --cached   # render only, reusing the last execution of each notebook

Prints the build time split into execution and rendering, the site's total size and its
largest page; the figures go in the README's speed table. Builds into build/book-bench so a
maintainer's build/book is left alone.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

from tools import book

ROOT = Path(__file__).resolve().parents[1]

#: Targets from the issue: each widget under about 1 MB; the quick build must fit CI (~2-3 min).
QUICK_TARGET_S = 180
WIDGET_TARGET_BYTES = 1_050_000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full-size build instead of quick mode")
    parser.add_argument("--cached", action="store_true", help="reuse cached executions (measures rendering)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "book-bench")
    args = parser.parse_args(argv)
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or 'cpu'}, " \
        f"{torch.get_num_threads()} threads)"
    f = book.build(args.out, quick=not args.full, use_cache=args.cached)
    run_s = {k: v for k, v in f["execute_s"].items() if v is not None}
    print(f"\nReading edition, {f['mode']} build on {device}:")
    print(f"  total            {f['total_s']:8.1f} s")
    for name, s in f["execute_s"].items():
        print(f"  execute {name:<40} {'cached' if s is None else f'{s:8.1f} s'}")
    for lang, s in f["render_s"].items():
        print(f"  render {lang:<41} {s:8.1f} s")
    print(f"  execution {sum(run_s.values()):.1f} s, rendering {f['render_wall_s']:.1f} s (both languages at once)")
    print(f"  site {f['site_bytes'] / 1e6:.1f} MB in {f['files']} files; largest page {f['largest_page']} "
          f"{f['largest_page_bytes'] / 1e6:.2f} MB")
    widgets = []
    for page in (args.out / "html" / "en" / "notebooks").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        widgets += [len(block) for block in text.split('<div class="cu-slider"')[1:]]
    if widgets:
        print(f"  kernel-free sliders: {len(widgets)}, largest {max(widgets) / 1e6:.2f} MB")
    ok = not widgets or max(widgets) <= WIDGET_TARGET_BYTES
    print(f"{'PASS' if ok else 'MISS'}: every kernel-free slider under about 1 MB")
    if f["mode"] == "quick" and not args.cached:
        print(f"{'PASS' if f['total_s'] <= QUICK_TARGET_S else 'MISS'}: quick build within {QUICK_TARGET_S} s "
              f"(the CI budget for the book)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
