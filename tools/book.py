#!/usr/bin/env python
"""Build the reading edition: a static bilingual website of the executed notebooks.

    make book                      # full size (as the notebooks run here: GPU sizes on a GPU)
    COURSE_QUICK=1 make book       # quick mode: what CI builds and checks
    python -m tools.book --help    # the same, with options (output folder, no cache)
    python -m http.server -d build/book/html    # then open http://localhost:8000

Steps, all offline (the notebooks run with ``HF_HUB_OFFLINE=1`` and no token: a build never downloads or uploads):

1. **Execute** each English notebook (``notebooks/*.ipynb`` without ``_CN``) with nbclient in
   the notebooks folder, after a hidden first cell that makes every course widget display as a
   kernel-free slider (``tools/book_widgets.py``, through IPython's display formatters; the cell
   is removed again after the run). Executions are cached in ``<out>/.cache`` under a key
   made of the notebook's code cells, course_utils' sources, quick/full mode and the device: a
   notebook runs again only when one of those changed.
2. **Clean** the outputs for a page: outputs that are only an ipywidgets model (progress bars)
   are dropped, progress lines are folded to their last state, widget state is stripped, so no page
   shows a dead "loading widget".
3. **Chinese**: each ``_CN`` twin gets the English outputs cell by cell. Its code cells must be
   the English code (comments aside, as tests/test_translation_parity.py checks); if they are
   not, the build stops and names the cells.
4. **Assemble** one source tree per language: the README (README_CN.md) as the landing page
   with its links made to work on the site, the notebooks under the English names (so a page's
   twin has the same path), a line of launch links (Colab, Kaggle, SageMaker Studio Lab,
   download) right under each notebook's title.
5. **Render** both trees (in parallel) with Sphinx + myst-nb + sphinx-book-theme (``docs/book/conf.py``) into
   ``<out>/html/en`` and ``<out>/html/zh``, add the clean notebooks for download and a root
   page that forwards to English. ``<out>/build.json`` records the timings and sizes.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from html import escape as escape_html
from pathlib import Path

import nbformat

from tools import cn_sync

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CONF = ROOT / "docs" / "book"
DEFAULT_OUT = ROOT / "build" / "book"
PACKAGE = ROOT / "course_utils"
BOOK_WIDGETS = ROOT / "tools" / "book_widgets.py"
#: The hidden first cell of a book execution: widgets display as kernel-free sliders (removed after the run).
BOOK_CELL = nbformat.v4.new_code_cell("from tools.book_widgets import register\n\nregister()", id="book-widgets")
#: Site folder and Sphinx language of each edition.
LANGS = {"en": "en", "zh": "zh_CN"}
READMES = {"en": "README.md", "zh": "README_CN.md"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LAUNCH_TEXT = {
    "en": {"colab": "Open in Colab", "kaggle": "Open in Kaggle", "studiolab": "Open in SageMaker Studio Lab",
           "download": "Download the notebook (.ipynb)"},
    "zh": {"colab": "在 Colab 中打开", "kaggle": "在 Kaggle 中打开", "studiolab": "在 SageMaker Studio Lab 中打开",
           "download": "下载笔记本 (.ipynb)"},
}



class BookError(RuntimeError):
    """The book cannot be built as things are; the message says what to do."""


# ----------------------------------------------------------------------------- execution
def english_notebooks() -> list[Path]:
    return cn_sync.english_notebooks()


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def device_kind() -> str:
    """What the notebooks will run on ("cuda" or "cpu"): full-size outputs differ between them."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cache_key(nb, quick: bool, device: str) -> str:
    """Hash of what an execution's outputs depend on: the code, course_utils, mode and device."""
    h = hashlib.sha256()
    h.update(f"mode={'quick' if quick else 'full'} device={device}\n".encode())
    for cell in code_cells(nb):
        h.update(cell.source.encode("utf-8") + b"\0")
    for path in [*sorted(PACKAGE.rglob("*.py")), BOOK_WIDGETS]:
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def execute(path: Path, cache: Path, quick: bool, device: str, use_cache: bool = True) -> tuple:
    """The executed notebook (from the cache when its key matches) and the seconds it took (None if cached)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(str(path), as_version=4)
    cached = cache / f"{path.stem}-{cache_key(nb, quick, device)}.ipynb"
    if use_cache and cached.exists():
        print(f"  {path.name}: cached ({cached.name})", flush=True)
        return nbformat.read(str(cached), as_version=4), None
    print(f"  {path.name}: executing ({'quick' if quick else 'full'} mode, {device}) ...", flush=True)
    # The kernel inherits these. PYTHONPATH: the kernel imports tools/ (the hidden first cell registers
    # the kernel-free slider). The Hub settings: a docs build never talks to the Hub and sees no token, so
    # notebook 01's share cell cannot create a public repository and upload a model (or print the
    # builder's name into a page).
    kernel_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                  "COURSE_QUICK": "1" if quick else "", "HF_HUB_OFFLINE": "1",
                  "HF_TOKEN": None, "HUGGING_FACE_HUB_TOKEN": None, "HF_TOKEN_PATH": str(cache / "no-token")}
    env_before = {k: os.environ.get(k) for k in kernel_env}
    for k, v in kernel_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    start = time.perf_counter()
    nb.cells.insert(0, copy.deepcopy(BOOK_CELL))
    try:
        client = NotebookClient(nb, timeout=None, kernel_name="python3", store_widget_state=False,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    except CellExecutionError as err:
        raise BookError(f"{path.name} failed while executing for the book:\n{err}") from None
    finally:
        without_book_cell(nb)
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - start
    print(f"  {path.name}: executed in {seconds:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f"{path.stem}-*.ipynb"):  # one execution per notebook is enough
        old.unlink()
    nbformat.write(nb, str(cached))
    return nb, seconds


def without_book_cell(nb) -> None:
    """Remove the hidden first cell of a book execution, numbering the other cells' runs from 1 again."""
    if nb.cells and nb.cells[0].get("id") == BOOK_CELL.id:
        del nb.cells[0]
        for cell in code_cells(nb):
            if cell.get("execution_count"):
                cell.execution_count -= 1
                for out in cell.get("outputs", []):
                    if out.get("execution_count"):
                        out.execution_count -= 1


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PROGRESS = re.compile(r"^\s*(.*?):?\s*\d+%\|")


def fold_progress(text: str) -> str:
    """What a reader should see of a stream: ``\r``-rewritten lines folded to their last state,
    terminal escapes removed, and one line per progress bar (its last)."""
    lines = [_ANSI.sub("", line).rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
    last = {}
    for k, line in enumerate(lines):
        m = _PROGRESS.match(line)
        if m:
            last[m.group(1)] = k
    kept = [line for k, line in enumerate(lines)
            if line.strip() and not ((m := _PROGRESS.match(line)) and last[m.group(1)] != k)]
    return "\n".join(kept) + "\n" if kept else ""


def clean_outputs(nb):
    """Outputs fit for a static page: widget-model-only outputs (progress bars) dropped, the
    widget-view entry removed elsewhere, streams merged and their progress lines folded,
    widget state stripped."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in code_cells(nb):
        kept = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                if kept and kept[-1].output_type == "stream" and kept[-1].name == out.name:
                    kept[-1].text += out.text
                    continue
            elif out.output_type in ("display_data", "execute_result") and WIDGET_VIEW in out.data:
                del out.data[WIDGET_VIEW]
                if set(out.data) <= {"text/plain"}:  # "HBox(children=...)", nothing to show without a kernel
                    continue
            kept.append(out)
        for out in kept:
            if out.output_type == "stream":
                out.text = fold_progress(out.text)
        cell.outputs = [o for o in kept if o.output_type != "stream" or o.text]
    return nb


def with_english_outputs(en_nb, cn_nb, cn_name: str):
    """The Chinese notebook with the English run's outputs, cell by cell; fails loudly when the
    code differs (comments aside), since the outputs would then not be this code's."""
    en_code, cn_code = code_cells(en_nb), code_cells(cn_nb)
    if len(en_code) != len(cn_code):
        raise BookError(f"{cn_name} has {len(cn_code)} code cells, its English twin {len(en_code)}: the English "
                        "outputs cannot be copied. Run `make cn-status` (tools/cn_sync.py) and bring it in step.")
    differ = [f"code cell {k + 1} (id {en.get('id')})" for k, (en, cn) in enumerate(zip(en_code, cn_code))
              if cn_sync.code_key(en.source) != cn_sync.code_key(cn.source)]
    if differ:
        raise BookError(f"{cn_name}: the code differs from English in {', '.join(differ)}, so the English outputs "
                        "would not be its outputs. Run `make cn-status` (tools/cn_sync.py) and bring it in step.")
    out = copy.deepcopy(cn_nb)
    for en, cn in zip(en_code, code_cells(out)):
        cn.outputs = copy.deepcopy(en.get("outputs", []))
        cn.execution_count = en.get("execution_count")
    return out


# ----------------------------------------------------------------------------- assembly
def _github(path: str, is_dir: bool) -> str:
    from course_utils import links

    return f"{links.REPO_URL}/{'tree' if is_dir else 'blob'}/{links.BRANCH}/{path}"


def studiolab_url(notebook: str) -> str:
    from course_utils import links

    return f"https://studiolab.sagemaker.aws/import/github/{links.REPO_URL.removeprefix('https://github.com/')}" \
           f"/blob/{links.BRANCH}/{notebook}"


def page_name(notebook_name: str) -> str:
    """The page a notebook becomes in both trees: the English stem."""
    stem = Path(notebook_name).stem
    return stem[:-len(cn_sync.SUFFIX)] if stem.endswith(cn_sync.SUFFIX) else stem


def rewrite_readme(text: str, lang: str, src: Path) -> str:
    """The README as a landing page: notebook links become pages (the other language's page for
    the other language's notebook), README links the other language's landing page, pictures are
    copied along (badges, pictures from outside, become plain links), other repository paths go to GitHub."""
    other = "zh" if lang == "en" else "en"

    def target(url: str) -> str | None:
        """The new target of a link, or None to leave it alone."""
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", url, re.I):
            return None
        path, _, anchor = url.partition("#")
        norm = posixpath.normpath(path)
        file = ROOT / norm
        if norm.startswith("notebooks/") and norm.endswith(".ipynb") and file.is_file():
            return f"notebooks/{page_name(norm)}.ipynb" + (f"#{anchor}" if anchor else "")
        if norm in READMES.values():
            return None  # handled as a whole link below
        if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
            (src / norm).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, src / norm)
            return norm
        if file.exists():
            return _github(norm, file.is_dir()) + (f"#{anchor}" if anchor else "")
        return None

    def readme_link(m):
        lang_of = "en" if m.group(2) == READMES["en"] else "zh"
        href = "index.html" if lang_of == lang else f"../{other}/index.html"
        return f'<a href="{href}">{m.group(1)}</a>'

    def twin_link(m):
        """A link to the other language's notebook ("英文原版：…") opens that language's page."""
        path, _, anchor = m.group(2).partition("#")
        lang_of = "zh" if Path(path).stem.endswith(cn_sync.SUFFIX) else "en"
        if lang_of == lang or not (ROOT / posixpath.normpath(path)).is_file():
            return m.group(0)
        href = f"../{other}/notebooks/{page_name(path)}.html" + (f"#{anchor}" if anchor else "")
        return f'<a href="{href}" hreflang="{lang_of}">{m.group(1)}</a>'

    # badges are pictures from outside the site: on the site they are plain links (same target)
    text = re.sub(r"\[!\[([^\]]*)\]\(https?://[^)\s]+\)\]\(([^)\s]+)\)", r"[\1](\2)", text)
    text = re.sub(r"\[([^\[\]]*)\]\((README(?:_CN)?\.md)\)", readme_link, text)
    text = re.sub(r"(?<!!)\[([^\[\]]*)\]\((notebooks/[^)\s]+\.ipynb(?:#[^)\s]*)?)\)", twin_link, text)
    text = re.sub(r"\]\(([^)\s]+)\)", lambda m: f"]({target(m.group(1)) or m.group(1)})", text)
    return re.sub(r'((?:src|href)=")([^"]+)(")', lambda m: m.group(1) + (target(m.group(2)) or m.group(2)) + m.group(3),
                  text)


def launch_html(notebook: str, lang: str) -> str:
    """The launch links of ``notebooks/<name>.ipynb`` (the committed notebook), as one HTML block."""
    from course_utils import links

    words = LAUNCH_TEXT[lang]
    name = Path(notebook).name
    items = [(links.colab_url(notebook), words["colab"]), (links.kaggle_url(notebook), words["kaggle"]),
             (studiolab_url(notebook), words["studiolab"])]
    html = "".join(f'<a class="cu-launch-link" href="{url}">{label}</a>' for url, label in items)
    html += f'<a class="cu-launch-link cu-download" href="{name}" download="{name}">{words["download"]}</a>'
    return f'<div class="cu-launch">{html}</div>'


def with_launch_links(nb, notebook: str, lang: str):
    """The notebook with its launch links right under the title (in a cell of their own at the
    top when the notebook does not start with a ``# `` title)."""
    nb = copy.deepcopy(nb)
    block = launch_html(notebook, lang)
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown" and first.source.lstrip().startswith("# "):
        title, _, rest = first.source.lstrip().partition("\n")
        first.source = f"{title}\n\n{block}\n\n{rest.lstrip()}"
    else:
        cell = nbformat.v4.new_markdown_cell(block)
        cell.id = "book-launch-links"
        nb.cells.insert(0, cell)
    return nb


def title_of(markdown: str) -> str:
    m = re.search(r"^# (.+)$", markdown, re.M)
    return m.group(1).strip() if m else "Unit 1"


def assemble(lang: str, pages: dict, src: Path) -> str:
    """Write ``src`` for one language: index.md and notebooks/<page>.ipynb. Returns the site title."""
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    readme = (ROOT / READMES[lang]).read_text(encoding="utf-8")
    toc = "\n".join(f"notebooks/{name}" for name in pages)
    index = rewrite_readme(readme, lang, src).rstrip() + f"\n\n```{{toctree}}\n:hidden:\n:maxdepth: 2\n\n{toc}\n```\n"
    (src / "index.md").write_text(index, encoding="utf-8")
    for name, (notebook, nb) in pages.items():
        nbformat.write(with_launch_links(nb, notebook, lang), str(src / "notebooks" / f"{name}.ipynb"))
    return title_of(readme)


def render_all(titles: dict, out: Path) -> dict:
    """Run Sphinx on each language's tree (in parallel); returns the seconds each took."""
    started, procs = {}, {}
    for lang, title in titles.items():
        target = out / "html" / lang
        if target.exists():
            shutil.rmtree(target)
        cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-c", str(CONF), "-d", str(out / ".doctrees" / lang),
               "-D", f"language={LANGS[lang]}", "-D", f"project={title}", "-D", f"html_title={title}",
               str(out / "src" / lang), str(target)]
        started[lang] = time.perf_counter()
        procs[lang] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(CONF))
    seconds, failed = {}, []
    for lang, proc in procs.items():
        _, stderr = proc.communicate()
        seconds[lang] = time.perf_counter() - started[lang]
        for line in stderr.splitlines():
            if "WARNING" in line or "ERROR" in line:
                print(f"  sphinx ({lang}): {line}", flush=True)
        if proc.returncode:
            failed.append(f"Sphinx failed for the {lang} edition:\n{stderr[-4000:]}")
    if failed:
        raise BookError("\n".join(failed))
    return seconds


REDIRECT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta http-equiv="refresh" content="0; url=en/index.html"><link rel="canonical" href="en/index.html"></head>
<body><p><a href="en/index.html">English</a> | <a href="zh/index.html" lang="zh-CN">简体中文</a></p></body></html>
"""


def redirect_page(readme: str) -> str:
    """The site's root page: the README's title (escaped: it is text, never markup) and a redirect."""
    return REDIRECT.format(title=escape_html(title_of(readme)))


def site_sizes(html: Path) -> dict:
    files = [p for p in html.rglob("*") if p.is_file()]
    pages = [p for p in files if p.suffix == ".html"]
    largest = max(pages, key=lambda p: p.stat().st_size)
    return {"site_bytes": sum(p.stat().st_size for p in files), "files": len(files),
            "largest_page": largest.relative_to(html).as_posix(), "largest_page_bytes": largest.stat().st_size}


# ----------------------------------------------------------------------------- the build
def check_writable(out: Path) -> None:
    """Fail at once, not after minutes of executing notebooks, when ``out`` cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise BookError(f"cannot write to the build folder {out} ({err.strerror or err}): "
                        "pick another one with --out") from None


def build(out: Path = DEFAULT_OUT, quick: bool | None = None, use_cache: bool = True) -> dict:
    """Execute (or reuse), copy to the Chinese pages, assemble and render. Returns build.json's figures."""
    out = Path(out).resolve()
    check_writable(out)  # before importing torch & co. (seconds) and executing notebooks (minutes)
    from course_utils.settings import env_flag

    quick = env_flag("COURSE_QUICK") if quick is None else quick
    start = time.perf_counter()
    device = device_kind()
    english = english_notebooks()
    if not english:
        raise BookError(f"no notebooks in {NOTEBOOKS}")
    print(f"Book ({'quick' if quick else 'full'} mode) -> {out / 'html'}", flush=True)
    pages = {"en": {}, "zh": {}}
    executed = {}
    for path in english:
        nb, seconds = execute(path, out / ".cache" / ("quick" if quick else "full"), quick, device, use_cache)
        executed[path.name] = seconds
        en_nb = clean_outputs(nb)
        pages["en"][path.stem] = (f"notebooks/{path.name}", en_nb)
        cn_path = cn_sync.twin(path)
        if not cn_path.exists():
            raise BookError(f"{path.name} has no Chinese twin {cn_path.name}: run `python tools/cn_sync.py` to create it")
        cn_nb = with_english_outputs(en_nb, nbformat.read(str(cn_path), as_version=4), cn_path.name)
        pages["zh"][path.stem] = (f"notebooks/{cn_path.name}", cn_nb)
    html = out / "html"
    html.mkdir(parents=True, exist_ok=True)
    titles = {lang: assemble(lang, pages[lang], out / "src" / lang) for lang in LANGS}
    render_start = time.perf_counter()
    rendered = render_all(titles, out)  # both languages at once: Sphinx renders on one core each
    render_wall = time.perf_counter() - render_start
    for lang in LANGS:
        for notebook, _ in pages[lang].values():  # the clean, committed notebook is what a reader downloads
            shutil.copy2(ROOT / notebook, html / lang / "notebooks" / Path(notebook).name)
        print(f"  {lang}: rendered in {rendered[lang]:.1f} s", flush=True)
    (html / "index.html").write_text(redirect_page((ROOT / READMES["en"]).read_text()), encoding="utf-8")
    (html / ".nojekyll").write_text("")
    figures = {"mode": "quick" if quick else "full", "device": device,
               "execute_s": executed, "render_s": rendered, "render_wall_s": render_wall, "total_s": time.perf_counter() - start,
               **site_sizes(html)}
    (out / "build.json").write_text(json.dumps(figures, indent=1) + "\n")
    run_s = sum(s for s in executed.values() if s)
    print(f"Done in {figures['total_s']:.0f} s (execution {run_s:.0f} s, rendering {render_wall:.0f} s); "
          f"site {figures['site_bytes'] / 1e6:.1f} MB, largest page {figures['largest_page']} "
          f"{figures['largest_page_bytes'] / 1e6:.2f} MB. Open {html / 'index.html'}", flush=True)
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.book", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="build folder (default: build/book)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", default=None, help="quick mode (default: from COURSE_QUICK)")
    mode.add_argument("--full", dest="quick", action="store_false", help="full size even if COURSE_QUICK is set")
    parser.add_argument("--no-cache", action="store_true", help="execute every notebook even if a cached run matches")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.quick, use_cache=not args.no_cache)
    except BookError as err:
        print(f"make book: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
