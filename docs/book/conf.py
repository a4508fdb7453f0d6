"""Sphinx configuration of the reading edition (both languages; ``tools/book.py`` runs it).

``tools/book.py`` assembles one source tree per language (the README as ``index.md``, the
executed notebooks under ``notebooks/``) and runs Sphinx on each with ``-c docs/book`` and
``-D language=en`` or ``-D language=zh_CN``. The two trees hold the same page names, so the
language switch of a page is the same path in the other tree.
"""
import os

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


def _twin(app, pagename, templatename, context, doctree):
    """Context for lang-switch.html: the same page in the other language's tree."""
    folder, label = LANGUAGES.get(app.config.language, LANGUAGES["en"])
    other = "zh" if folder == "en" else "en"
    context["lang_twin_url"] = "../" * (pagename.count("/") + 1) + f"{other}/{pagename}.html"
    context["lang_twin_label"] = label
    context["lang_twin_code"] = "zh-CN" if other == "zh" else "en"


def setup(app):
    app.connect("html-page-context", _twin)
