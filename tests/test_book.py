"""The reading edition (tools/book.py): the build's pieces, then every notebook run in quick mode, and the
quick site built from those runs and checked.

The unit tests at the top need no build. The site tests share one quick build (both notebooks
executed in quick mode, both languages rendered) into build/book-quick, whose execution cache
makes a second run cheap; they are skipped when the [book] extra is missing, unless
COURSE_REQUIRE_BROWSER=1 (CI) turns that into a failure. The real-browser test opens a
notebook page from a local HTTP server, moves a kernel-free slider with the keyboard and the
mouse, and switches language.
"""
import base64
import html.parser
import importlib.util
import json
import os
import posixpath
import re
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import torch
from conftest import need

from tools import book

ROOT = Path(__file__).resolve().parents[1]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
DEAD_WIDGET = ["Loading widget", "loading widget", WIDGET_VIEW, "version_major", '"model_id"', "&quot;model_id&quot;",
               "HBox(children", "VBox(children", "IntSlider(", "FloatProgress("]


# ----------------------------------------------------------------------------- pieces
def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def test_chinese_pages_take_the_english_outputs_cell_by_cell():
    en = _nb(nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1  # one\nx"))
    en.cells[1].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "1"}, execution_count=1)]
    cn = _nb(nbformat.v4.new_markdown_cell("# 标题"), nbformat.v4.new_code_cell("x = 1  # 一\nx"))
    out = book.with_english_outputs(en, cn, "x_CN.ipynb")
    assert out.cells[1].outputs == en.cells[1].outputs
    assert out.cells[1].source == "x = 1  # 一\nx" and out.cells[0].source == "# 标题"  # the Chinese text stays
    assert cn.cells[1].outputs == []  # the notebook read from disk is not changed


@pytest.mark.parametrize("cn_code", [["x = 2\nx"], ["x = 1\nx", "y = 2"]], ids=["code differs", "extra cell"])
def test_chinese_pages_fail_loudly_when_the_code_differs(cn_code):
    en = _nb(nbformat.v4.new_code_cell("x = 1\nx"))
    cn = _nb(*[nbformat.v4.new_code_cell(c) for c in cn_code])
    with pytest.raises(book.BookError, match="make cn-status"):
        book.with_english_outputs(en, cn, "x_CN.ipynb")


def test_clean_outputs_drops_widget_models_and_folds_progress_lines():
    cell = nbformat.v4.new_code_cell("train()")
    cell.outputs = [
        nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": "abc"}, "text/plain": "HBox(children=())"}),
        nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": "d"}, "text/html": "<div>slider</div>"}),
        nbformat.v4.new_output("stream", name="stderr", text="step 1\rstep 2\rstep 3\ndone\n"),
        nbformat.v4.new_output("stream", name="stderr", text="\rTraining:   0%|          | 0/4\x1b[A"),
        nbformat.v4.new_output("stream", name="stderr", text="\rTraining: 100%|##########| 4/4\n"),
    ]
    nb = _nb(cell)
    nb.metadata["widgets"] = {"state": {}}
    clean = book.clean_outputs(nb)
    assert "widgets" not in clean.metadata
    outputs = clean.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "stream"]
    assert set(outputs[0].data) == {"text/html"}
    assert outputs[1].text == "step 3\ndone\nTraining: 100%|##########| 4/4\n"


def test_cache_key_follows_code_mode_and_device_not_prose():
    nb = _nb(nbformat.v4.new_markdown_cell("text"), nbformat.v4.new_code_cell("x = 1"))
    key = book.cache_key(nb, True, "cpu")
    prose = _nb(nbformat.v4.new_markdown_cell("other text"), nbformat.v4.new_code_cell("x = 1"))
    code = _nb(nbformat.v4.new_markdown_cell("text"), nbformat.v4.new_code_cell("x = 2"))
    assert book.cache_key(prose, True, "cpu") == key
    assert len({key, book.cache_key(code, True, "cpu"), book.cache_key(nb, False, "cpu"),
                book.cache_key(nb, True, "cuda")}) == 4


def test_readme_links_are_made_to_work_on_the_site(tmp_path):
    text = ("**English** | [简体中文](README_CN.md)\n[Intro](notebooks/01_introduction_to_diffusers.ipynb) "
            "[Intro CN](notebooks/01_introduction_to_diffusers_CN.ipynb) [helpers](course_utils/) "
            "[paper](https://arxiv.org/abs/2006.11239) [top](#set-up)")
    out = book.rewrite_readme(text, "en", tmp_path)
    assert '<a href="../zh/index.html">简体中文</a>' in out
    assert "[Intro](notebooks/01_introduction_to_diffusers.ipynb)" in out
    assert '<a href="../zh/notebooks/01_introduction_to_diffusers.html" hreflang="zh">Intro CN</a>' in out
    assert "](https://github.com/" in out and "/tree/main/course_utils)" in out
    assert "](https://arxiv.org/abs/2006.11239)" in out and "](#set-up)" in out
    zh = book.rewrite_readme("[English](README.md) | [简体中文](README_CN.md)", "zh", tmp_path)
    assert zh == '<a href="../en/index.html">English</a> | <a href="index.html">简体中文</a>'


def test_readme_links_to_the_other_languages_notebook_open_its_page(tmp_path):
    zh = book.rewrite_readme("[入门](notebooks/01_introduction_to_diffusers_CN.ipynb)\n"
                             "英文原版：[Introduction to Diffusers](notebooks/01_introduction_to_diffusers.ipynb)", "zh", tmp_path)
    assert "[入门](notebooks/01_introduction_to_diffusers.ipynb)" in zh  # the Chinese page
    assert '<a href="../en/notebooks/01_introduction_to_diffusers.html" hreflang="en">Introduction to Diffusers</a>' in zh
    en = book.rewrite_readme("[Intro CN](notebooks/01_introduction_to_diffusers_CN.ipynb#set-up)", "en", tmp_path)
    assert en == '<a href="../zh/notebooks/01_introduction_to_diffusers.html#set-up" hreflang="zh">Intro CN</a>'


def test_badges_become_plain_links_on_the_site(tmp_path):
    badge = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             "(https://colab.research.google.com/github/x/y/blob/main/notebooks/a.ipynb)")
    out = book.rewrite_readme(badge, "en", tmp_path)
    assert out == "[Open In Colab](https://colab.research.google.com/github/x/y/blob/main/notebooks/a.ipynb)"


@pytest.mark.parametrize("where", ["file", "read-only"])
def test_an_unwritable_build_folder_fails_at_once_in_one_line(tmp_path, monkeypatch, capsys, where):
    if where == "file":
        out = tmp_path / "a-file"
        out.write_text("")
    else:
        if os.geteuid() == 0:  # root writes anywhere: /proc is the folder nobody can write
            out = Path("/proc/course-book-out")
        else:
            (tmp_path / "ro").mkdir(mode=0o500)
            out = tmp_path / "ro" / "out"
    monkeypatch.setattr(book, "execute", lambda *a, **k: pytest.fail("executed before checking the build folder"))
    assert book.main(["--out", str(out), "--quick"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot write to the build folder {out}" in err and "--out" in err


def test_launch_links_sit_under_the_title_and_name_the_committed_notebook():
    nb = book.with_launch_links(_nb(nbformat.v4.new_markdown_cell("# Title\ntext\n## Part"), nbformat.v4.new_code_cell("1")),
                                "notebooks/02_x_CN.ipynb", "zh")
    title, links, rest = nb.cells[0].source.split("\n\n")
    assert title == "# Title" and rest == "text\n## Part" and len(nb.cells) == 2
    for url in ("colab.research.google.com/github/", "kaggle.com/kernels/welcome?src=",
                "studiolab.sagemaker.aws/import/github/", 'href="02_x_CN.ipynb"'):
        assert url in links
    assert "notebooks/02_x_CN.ipynb" in links and "下载" in links
    untitled = book.with_launch_links(_nb(nbformat.v4.new_code_cell("1")), "notebooks/a.ipynb", "en")
    assert untitled.cells[0].id == "book-launch-links" and "Open in Colab" in untitled.cells[0].source


def _small_widget(steps: int = 1000):
    from diffusers import DDPMScheduler

    import course_utils as cu

    x0 = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return cu.forward_process_widget(DDPMScheduler(num_train_timesteps=steps), x0)


def _slider_data(page_html: str) -> list[dict]:
    return [json.loads(m.replace("<\\/", "</")) for m in
            re.findall(r'<script type="application/json" class="cu-slider-data">(.*?)</script>', page_html, re.S)]


def test_kernel_free_slider_only_when_the_book_is_built():
    from IPython.core.interactiveshell import InteractiveShell

    from tools import book_widgets

    w = _small_widget()
    assert WIDGET_VIEW in w._repr_mimebundle_() and "text/html" not in w._repr_mimebundle_()
    shell = InteractiveShell()  # a fresh session, as the book's kernel is
    book_widgets.register(shell)  # what the book's hidden first cell does
    bundle, _ = shell.display_formatter.format(w)
    assert set(bundle) == {"text/html", "text/plain"}  # no widget model, no static strip: the slider replaces both
    page = bundle["text/html"]
    assert len(page) <= 1_050_000  # "about 1 MB"
    data = _slider_data(page)[0]
    k = len(data["frames"])
    assert 10 <= k < 1000 and len(data["labels"]) == k
    assert f"Kernel-free slider: {k} of 1000 frames embedded" in page
    assert f'max="{k - 1}"' in page
    assert data["labels"][0].startswith("t = 0 ") and data["labels"][-1].startswith("t = 999 ")
    # frame k shows exactly the live widget's pixels at that timestep (before the page enlarges them)
    from io import BytesIO

    from PIL import Image

    from course_utils.widget_drawing import grid_image
    t = int(data["labels"][k // 2].split()[2])
    shown = Image.open(BytesIO(base64.b64decode(data["frames"][k // 2][0]))).convert("RGB")
    assert shown.tobytes() == grid_image(w.panel_frames(t)[0], scale=1).convert("RGB").tobytes()


def test_small_widgets_keep_every_frame():
    from tools.book_widgets import book_frames, book_html

    w = _small_widget(steps=20)
    indices, frames = book_frames(w)
    assert indices == list(range(20)) and len(frames) == 20
    assert "Kernel-free slider: 20 of 20 frames embedded." in book_html(w)
    indices, _ = book_frames(w, budget=100_000)
    assert indices[0] == 0 and indices[-1] == 19 and 2 <= len(indices) < 5


def test_the_hidden_book_cell_leaves_no_trace():
    nb = _nb(nbformat.v4.new_code_cell("1", id="a"))
    nb.cells.insert(0, nbformat.from_dict(dict(book.BOOK_CELL)))
    nb.cells[0].execution_count, nb.cells[1].execution_count = 1, 2
    nb.cells[1].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "1"}, execution_count=2)]
    book.without_book_cell(nb)
    assert [c.id for c in nb.cells] == ["a"] and nb.cells[0].execution_count == nb.cells[0].outputs[0].execution_count == 1


# ----------------------------------------------------------------------------- the notebooks run
QUICK_OUT = ROOT / "build" / "book-quick"


@pytest.fixture(scope="session")
def course_cache(tmp_path_factory):
    return os.environ.get("COURSE_TEST_CACHE") or str(tmp_path_factory.mktemp("book-course-cache"))


@pytest.mark.parametrize("path", book.english_notebooks(), ids=lambda p: p.name)
def test_the_notebook_runs_in_quick_mode(path, course_cache, monkeypatch):
    """Every English notebook, top to bottom in quick mode, offline, in a fresh kernel: the book's own
    execution (cached in build/book-quick/.cache), so each notebook runs once for this test and the site.
    A failing cell fails the test with its code and traceback. The Chinese twins are the same code
    (tests/test_translation_parity.py); ``make nbmake`` runs all four under nbmake."""
    monkeypatch.setenv("COURSE_CACHE", course_cache)
    try:
        nb, _ = book.execute(path, QUICK_OUT / ".cache" / "quick", quick=True, device=book.device_kind())
    except book.BookError as error:
        pytest.fail(str(error), pytrace=False)
    cells = [c for c in book.code_cells(nb) if c.source.strip()]
    not_run = [c.get("id") for c in cells if not c.get("execution_count")]
    assert cells and not not_run, f"{path.name}: cells that did not run: {not_run}"


# ----------------------------------------------------------------------------- the quick site
@pytest.fixture(scope="session")
def site(course_cache):
    """The quick book, built once per session (both notebooks executed in quick mode, or taken from the
    cache the test above filled)."""
    for module in ("sphinx", "myst_nb", "sphinx_book_theme", "nbclient"):
        if importlib.util.find_spec(module) is None:
            need(f"{module} is not installed (the [book] extra)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("COURSE_CACHE", course_cache)
        figures = book.build(QUICK_OUT, quick=True)
    return {"html": QUICK_OUT / "html", "figures": figures}


def _pages(html_dir: Path, lang: str) -> set[str]:
    """The pages of one language (not the theme's template fragments that Sphinx copies into _static)."""
    return {p.relative_to(html_dir / lang).as_posix() for p in (html_dir / lang).rglob("*.html")
            if "_static" not in p.relative_to(html_dir).parts}


NOTEBOOK_PAGES = [f"notebooks/{p.stem}.html" for p in book.english_notebooks()]


def test_every_page_exists_in_both_languages(site):
    en, zh = _pages(site["html"], "en"), _pages(site["html"], "zh")
    assert en == zh
    assert {"index.html", "search.html", *NOTEBOOK_PAGES} <= en
    assert (site["html"] / "index.html").is_file() and (site["html"] / ".nojekyll").is_file()
    assert site["figures"]["mode"] == "quick"


class _Refs(html.parser.HTMLParser):
    """Every link, image, script and stylesheet of a page, and the language switch."""

    def __init__(self):
        super().__init__()
        self.refs, self.switch, self.images = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("href", "src"):
            if a.get(key) and not (tag == "a" and key == "src"):
                self.refs.append((tag, a[key]))
        if tag == "a" and "cu-lang-switch" in (a.get("class") or ""):
            self.switch.append(a["href"])
        if tag == "img":
            self.images.append(a.get("src", ""))


def _parse(path: Path) -> _Refs:
    refs = _Refs()
    refs.feed(path.read_text(encoding="utf-8"))
    return refs


def test_internal_links_and_images_resolve_and_nothing_loads_from_outside(site):
    html_dir, broken, external = site["html"], [], []
    pages = [html_dir / "index.html"] + [html_dir / lang / name for lang in ("en", "zh") for name in _pages(html_dir, lang)]
    for page in pages:
        for tag, ref in _parse(page).refs:
            parts = urlsplit(ref)
            if parts.scheme in ("http", "https"):
                # links may lead out; what a page loads (scripts, styles, fonts, pictures) may not
                if tag != "a":
                    external.append(f"{page.relative_to(html_dir)}: <{tag}> {ref}")
                continue
            if parts.scheme or not parts.path:  # data:, mailto:, #anchor
                continue
            target = Path(posixpath.normpath(str(page.parent / unquote(parts.path))))
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(html_dir)}: {ref}")
    assert not broken, "broken links:\n" + "\n".join(sorted(set(broken))[:40])
    assert not external, "loaded from outside the site (the site must work offline):\n" + "\n".join(external[:20])


def test_language_switch_lands_on_the_twin(site):
    html_dir = site["html"]
    for lang, other in (("en", "zh"), ("zh", "en")):
        for name in _pages(html_dir, lang):
            switch = _parse(html_dir / lang / name).switch
            assert len(switch) == 1, f"{lang}/{name}: {len(switch)} language switches"
            target = posixpath.normpath(posixpath.join(posixpath.dirname(f"{lang}/{name}"), switch[0]))
            assert target == f"{other}/{name}", f"{lang}/{name} switches to {target}"


def _executed(stem: str):
    cache = ROOT / "build" / "book-quick" / ".cache" / "quick"
    return nbformat.read(str(next(cache.glob(f"{stem}-*.ipynb"))), as_version=4)


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_notebook_pages_show_every_output_picture_and_no_dead_widget(site, page):
    nb = book.clean_outputs(_executed(Path(page).stem))
    outputs = [o for c in book.code_cells(nb) for o in c.outputs if o.output_type in ("display_data", "execute_result")]
    pictures = sum(1 for o in outputs if "image/png" in o.data and "text/html" not in o.data)
    sliders = sum(1 for o in outputs if "cu-slider" in o.data.get("text/html", ""))
    assert pictures >= 3, f"{page}: the notebook produced only {pictures} pictures"
    for lang in ("en", "zh"):
        text = (site["html"] / lang / page).read_text(encoding="utf-8")
        refs = _parse(site["html"] / lang / page)
        output_images = [src for src in refs.images if "_images/" in src]
        assert len(output_images) == pictures, f"{lang}/{page}: {len(output_images)} pictures, notebook {pictures}"
        assert len(_slider_data(text)) == sliders, f"{lang}/{page}: kernel-free sliders missing"
        for dead in DEAD_WIDGET:
            assert dead not in text, f"{lang}/{page} holds {dead!r}: a widget left without a kernel-free form"
        for site_link in ("colab.research.google.com", "kaggle.com/kernels", "studiolab.sagemaker.aws", ".ipynb\" download"):
            assert site_link in text, f"{lang}/{page} lacks its {site_link} link"


def test_every_course_widget_became_a_kernel_free_slider_under_about_1_mb(site):
    found = 0
    for page in NOTEBOOK_PAGES:
        text = (site["html"] / "en" / page).read_text(encoding="utf-8")
        for block in re.findall(r'<div class="cu-slider".*?</script><script>', text, re.S):
            found += 1
            assert len(block) <= 1_050_000
            m = re.search(r"Kernel-free slider: (\d+) of (\d+) frames embedded", block)
            data = _slider_data(block)[0]
            assert m and int(m.group(1)) == len(data["frames"]) <= int(m.group(2))
    assert found >= 4  # notebook 01: forward process, model view, trajectory; 02: corruption, trajectory, DDPM


def test_search_index_holds_both_languages(site):
    def terms(lang):
        text = (site["html"] / lang / "searchindex.js").read_text(encoding="utf-8")
        return json.loads(text[text.index("(") + 1:text.rindex(")")])["terms"]

    assert "schedul" in terms("en")
    assert {"噪声", "扩散"} <= set(terms("zh")), "the Chinese search index lacks Chinese words (jieba missing?)"


# ----------------------------------------------------------------------------- in a real browser
@pytest.fixture
def server(site):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site["html"])))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _check_slider(page, slider, data, tmp_path, tag):
    """Move ``slider`` by keyboard and mouse; the picture and label must be the frame it names."""
    input_ = slider.locator("input.cu-slider-input")
    image = slider.locator("img.cu-slider-image[data-panel='0']")
    label = slider.locator(".cu-slider-label")
    n = len(data["frames"])

    def shows(k: int):
        page.wait_for_function("([el, k]) => el.getAttribute('data-frame') === String(k)", arg=[slider.element_handle(), k],
                               timeout=5_000)
        assert input_.input_value() == str(k)
        assert image.get_attribute("src") == "data:image/png;base64," + data["frames"][k][0]
        assert label.inner_text().strip() == data["labels"][k].strip()

    shows(0)
    input_.scroll_into_view_if_needed()
    before = image.screenshot()
    input_.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    shows(3)
    assert image.screenshot() != before
    box = input_.bounding_box()
    page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)
    k = int(input_.input_value())
    assert abs(k - 0.75 * (n - 1)) <= max(2, n // 10), f"clicked at 75% of {n} frames, slider says {k}"
    shows(k)
    page.keyboard.press("End")
    shows(n - 1)
    page.screenshot(path=str(tmp_path / f"book_slider_{tag}.png"))


def test_kernel_free_slider_and_language_switch_in_a_browser(page, server, site, tmp_path):
    name = next(p for p in NOTEBOOK_PAGES if _slider_data((site["html"] / "en" / p).read_text(encoding="utf-8")))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{server}/en/{name}")
        slider = page.locator(".cu-slider").first
        data = _slider_data((site["html"] / "en" / name).read_text(encoding="utf-8"))[0]
        assert slider.get_attribute("data-ready") == "1"
        _check_slider(page, slider, data, tmp_path, "en")
        page.locator("a.cu-lang-switch").first.click()
        page.wait_for_url(f"**/zh/{name}")
        assert page.locator("html").get_attribute("lang").startswith("zh")
        _check_slider(page, page.locator(".cu-slider").first, data, tmp_path, "zh")
        page.locator("a.cu-lang-switch").first.click()
        page.wait_for_url(f"**/en/{name}")
        assert not errors, f"JavaScript errors: {errors}"
    finally:
        if os.environ.get("COURSE_BROWSER_SHOTS"):
            page.screenshot(path=str(tmp_path / "book_last.png"))
            for shot in tmp_path.glob("book_*.png"):
                shutil.copy(shot, os.environ["COURSE_BROWSER_SHOTS"])


def test_formulas_render_in_a_browser_with_the_network_off(page, server, site, tmp_path):
    """MathJax comes from the site: with every outside request refused, the formulas of a notebook
    page are typeset (glyphs with size, no TeX source left) in both languages, and nothing was
    missing or asked for outside."""
    outside, missing, fonts = [], [], []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
               else (outside.append(route.request.url), route.abort()))
    page.on("response", lambda response: missing.append(f"{response.status} {response.url}") if response.status >= 400
            else response.url.endswith(".woff") and fonts.append(response.url))
    name = next(p for p in NOTEBOOK_PAGES if r"\bar\alpha" in (site["html"] / "en" / p).read_text(encoding="utf-8"))
    for lang in ("en", "zh"):
        page.goto(f"{server}/{lang}/{name}")
        page.wait_for_function("document.querySelectorAll('mjx-container mjx-c').length > 20", timeout=30_000)
        display = page.locator("mjx-container[display='true']").first
        display.scroll_into_view_if_needed()
        box = display.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 15, f"{lang}/{name}: display formula box {box}"
        text = page.locator("article").inner_text()
        assert "\\bar" not in text and "\\sqrt" not in text, f"{lang}/{name}: TeX source left on the page"
        display.screenshot(path=str(tmp_path / f"book_formula_{lang}.png"))
    assert not outside, f"the pages asked for outside resources: {outside[:5]}"
    assert any("/_static/mathjax/" in url for url in fonts), "MathJax's web fonts were not loaded from the site"
    assert not missing, f"missing on the site: {missing[:5]}"
    if os.environ.get("COURSE_BROWSER_SHOTS"):
        for shot in tmp_path.glob("book_formula_*.png"):
            shutil.copy(shot, os.environ["COURSE_BROWSER_SHOTS"])
