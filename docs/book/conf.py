"""Sphinx configuration of the reading edition (both languages; ``tools/book.py`` runs it).

``tools/book.py`` assembles one source tree per language (the README as ``index.md``, the
executed notebooks under ``notebooks/``) and runs Sphinx on each with ``-c docs/book`` and
``-D language=en`` or ``-D language=zh_CN``. The two trees hold the same page names, so the
language switch of a page is the same path in the other tree.
"""
import importlib.util
import os
import shutil
from pathlib import Path

LANGUAGES = {"en": ("en", "简体中文"), "zh_CN": ("zh", "English")}  # Sphinx language: (folder, switch label)

project = os.environ.get("COURSE_BOOK_TITLE", "Unit 1: An Introduction to Diffusion Models")
author = "the diffusion-models course"
language = "en"
extensions = ["myst_nb"]
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_js_files = [("zh-stemmer.js", {"priority": 200})]  # before Sphinx's language_data.js
html_copy_source = False  # no _sources/ copies of the executed notebooks: the download is the clean one
html_show_sourcelink = False
html_theme_options = {
    "article_header_end": ["lang-switch.html", "article-header-buttons.html"],
    "use_download_button": False,  # would offer the executed copy; each page links the clean notebook
    "use_fullscreen_button": True,
    "show_toc_level": 2,
}
html_sidebars = {"**": ["navbar-logo.html", "sbt-sidebar-nav.html"]}  # search: the header's search button

# The notebooks were executed by tools/book.py (cached): Sphinx only renders them.
nb_execution_mode = "off"
# No CDN scripts: the course's widgets arrive as kernel-free HTML, and tools/book.py drops
# outputs that are only a widget model (progress bars), so nothing needs the ipywidgets manager.
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None),
                              ("html", "application/vnd.jupyter.widget-state+json", None)]
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "html_image", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]
# Search: Sphinx picks the index by language; Chinese words are split with jieba (the [book] extra).

# Formulas: MathJax 3 served by the site itself, never from a CDN (slow or blocked for many readers
# in mainland China; an offline copy would show raw TeX). The [book] extra's django-static-mathjax
# ships MathJax 3.2.2 (module `mathjax`); the build copies the one combined script that holds every
# TeX extension (so nothing is fetched on demand) and its web fonts into _static/mathjax/.
mathjax_path = "mathjax/tex-chtml-full.js"  # relative to _static
MATHJAX_FILES = ("tex-chtml-full.js", "output/chtml/fonts/woff-v2")


def mathjax_source() -> Path:
    """The folder of MathJax's browser build (es5) in the installed package; a clear error without it."""
    spec = importlib.util.find_spec("mathjax")
    es5 = Path(next(iter(spec.submodule_search_locations or []), "")) / "static" / "mathjax" / "es5" if spec else None
    if es5 is None or not (es5 / MATHJAX_FILES[0]).is_file():
        raise RuntimeError("MathJax for the reading edition is missing: pip install django-static-mathjax "
                           "(part of the [book] extra: pip install -e '.[book]')")
    return es5


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for name in MATHJAX_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)


def _twin(app, pagename, templatename, context, doctree):
    """Context for lang-switch.html: the same page in the other language's tree."""
    folder, label = LANGUAGES.get(app.config.language, LANGUAGES["en"])
    other = "zh" if folder == "en" else "en"
    context["lang_twin_url"] = "../" * (pagename.count("/") + 1) + f"{other}/{pagename}.html"
    context["lang_twin_label"] = label
    context["lang_twin_code"] = "zh-CN" if other == "zh" else "en"


def setup(app):
    mathjax_source()  # fail before rendering, not after
    app.connect("html-page-context", _twin)
    app.connect("build-finished", _copy_mathjax)
