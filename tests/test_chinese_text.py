"""The Chinese edition typeset as Chinese, with the glossary's terms.

Chinese prose (README_CN.md, docs/glossary_CN.md, the _CN notebooks' markdown) is stored one
paragraph or list item per line: a line break between two Hanzi renders as a space in
Chromium-based front-ends (Chrome, Colab, JupyterLab, GitHub, the reading edition). The
glossary's "避免" (avoid) column lists wordings that must not appear; the few typesetting rules
of the glossary that a pattern can check are checked here. `python -m tools.cn_sync --normalise`
fixes the line breaks; the other failures name the file, the cell and the words to change.
"""
import re
from pathlib import Path

import pytest

from tools import cn_sync

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "glossary_CN.md"
FIX = "run `python -m tools.cn_sync --normalise`"


def _texts(path: Path) -> list[tuple[str, str, str]]:
    """(where, kind, text) for each piece of a Chinese file: the whole Markdown file, or each cell."""
    name = path.relative_to(ROOT).as_posix()
    if path.suffix != ".ipynb":
        return [(name, "markdown", path.read_text(encoding="utf-8"))]
    return [(f"{name} cell {cell.get('id')}", cell.cell_type, cell.source) for cell in cn_sync.read(path).cells]


FILES = cn_sync.chinese_files()
IDS = [p.name for p in FILES]


@pytest.fixture(params=FILES, ids=IDS)
def chinese(request):
    return _texts(request.param)


def _prose(chinese):
    return [(where, text) for where, kind, text in chinese if kind == "markdown"]


# ----------------------------------------------------------------------------- one line per paragraph
def test_no_line_break_between_two_chinese_characters(chinese):
    found = [f"{where}: {b}" for where, text in _prose(chinese) for b in cn_sync.cjk_line_breaks(text)]
    assert not found, f"{len(found)} line break(s) inside Chinese paragraphs (shown as spaces): {FIX}\n" + "\n".join(found[:30])


def test_chinese_prose_is_one_line_per_paragraph(chinese):
    wrapped = [where for where, text in _prose(chinese) if cn_sync.normalise_markdown(text) != text]
    assert not wrapped, f"paragraphs wrapped over several lines in {', '.join(wrapped)}: {FIX}"


# ----------------------------------------------------------------------------- the normaliser
WRAPPED = """# 标题

第一段的前半句，
后半句在下一行；然后只朝它
走一部分路，再用 `code`
和 $x_t$ 收尾。English words
wrap too.

- 列表项的前半
  和后半。
  1. 嵌套的项
     续行。
- 第二项<HARD BREAK>
  硬换行保留。

> **说明：** 引用块里的
> 段落。
>
> 第二段。

```python
x = 1  # 代码
y = 2  # 不动
```

$$
a = b
$$

| 表格 | 不动 |
|---|---|
| 一 | 二 |
""".replace("<HARD BREAK>", "  ")


def test_normalise_joins_paragraphs_and_list_items_and_leaves_blocks_alone():
    out = cn_sync.normalise_markdown(WRAPPED)
    assert "第一段的前半句，后半句在下一行；然后只朝它走一部分路，再用 `code` 和 $x_t$ 收尾。English words wrap too." in out
    assert "- 列表项的前半和后半。\n  1. 嵌套的项续行。\n- 第二项  \n  硬换行保留。" in out
    assert "> **说明：** 引用块里的段落。\n>\n> 第二段。" in out
    for block in ("```python\nx = 1  # 代码\ny = 2  # 不动\n```", "$$\na = b\n$$", "| 表格 | 不动 |\n|---|---|\n| 一 | 二 |"):
        assert block in out
    assert cn_sync.normalise_markdown(out) == out
    assert cn_sync.cjk_line_breaks(WRAPPED) and not cn_sync.cjk_line_breaks(out)


def test_normalise_puts_spaces_where_the_browser_showed_one():
    assert cn_sync.normalise_markdown("在个人电脑的\nCPU 上，\nGPU 也行") == "在个人电脑的 CPU 上，GPU 也行"
    assert cn_sync.normalise_markdown("“方差保持”\n(variance-preserving)") == "“方差保持” (variance-preserving)"
    assert cn_sync.normalise_markdown("调度器 (scheduler)\n（见下文）") == "调度器 (scheduler)（见下文）"


def _rendered(md, text: str) -> tuple[list[str], str]:
    """What a Markdown text renders to: its tags, and its words (spaces next to Chinese text aside)."""
    html = md.render(text)
    words = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    return re.findall(r"<[^>]+>", html), re.sub(rf"\s*({cn_sync._CJK_TEXT.pattern})\s*", r"\1", words)


def test_normalise_keeps_what_the_notebooks_render(tmp_path):
    """On copies of the _CN notebooks: only markdown changes, and it renders the same elements
    with the same words (only the spaces that line breaks made next to Chinese text go)."""
    markdown_it = pytest.importorskip("markdown_it")
    md = markdown_it.MarkdownIt("commonmark").enable("table")
    for path in FILES[2:]:
        copy = tmp_path / path.name
        copy.write_bytes(path.read_bytes())
        cn_sync.normalise_file(copy)
        before, after = cn_sync.read(path), cn_sync.read(copy)
        assert [c.cell_type for c in before.cells] == [c.cell_type for c in after.cells]
        for old, new in zip(before.cells, after.cells):
            assert new.metadata == old.metadata
            if old.cell_type != "markdown":
                assert new.source == old.source
                continue
            assert _rendered(md, new.source) == _rendered(md, old.source), f"{path.name} {old.get('id')}"
        cn_sync.normalise_file(copy)
        assert cn_sync.read(copy) == after  # idempotent


# ----------------------------------------------------------------------------- the glossary's terms
def _glossary_rows() -> tuple[list[str], list[list[str]]]:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in GLOSSARY.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    return rows[0], rows[2:]


def avoided_terms() -> dict[str, str]:
    """{wording to avoid: the glossary's term}, from the glossary's 避免 column."""
    header, rows = _glossary_rows()
    avoid, term = header.index("避免"), header.index("中文")
    return {word.strip(): row[term] for row in rows for word in row[avoid].split("、") if word.strip()}


def test_glossary_has_an_avoid_column_and_the_review_rows():
    header, rows = _glossary_rows()
    assert header[:3] == ["English", "中文", "避免"]
    chinese = {row[1] for row in rows}
    for term in ("反向步骤", "截断", "梯度裁剪", "小批次", "提示词", "信噪比 (SNR)", "预热", "方差保持", "组归一化", "归一化分组",
                 "控件", "原版课程", "先睹为快", "2 核 CPU"):
        assert term in chinese, f"the glossary lacks {term}"
    avoid = avoided_terms()
    assert {"逆向一步", "小部件", "裁剪到", "原课程", "双核", "保方差", "轮次"} <= set(avoid)
    clash = [f"{word} (avoided) is inside the term {term}" for word, term in avoid.items()
             for other in chinese if word in other]
    assert not clash, clash


def test_no_avoided_wording_in_the_chinese_files(chinese):
    avoid = avoided_terms()
    found = []
    for where, kind, text in chinese:
        if where.startswith("docs/glossary_CN.md"):  # the glossary names them on purpose
            continue
        for word, term in avoid.items():
            for m in re.finditer(re.escape(word), text):
                found.append(f"{where}: “{word}” → {term}: …{text[max(0, m.start() - 12):m.end() + 12]}…".replace("\n", "⏎"))
    assert not found, "wordings the glossary avoids (docs/glossary_CN.md, 避免):\n" + "\n".join(found)


def test_no_avoided_wording_in_the_chinese_strings_of_the_code():
    """The Chinese the code shows (exercise hints, the site's labels) uses the glossary's terms too."""
    avoid = avoided_terms()
    files = [*(ROOT / "course_utils").rglob("*.py"), *(ROOT / "tools").glob("*.py"), *(ROOT / "docs" / "book").rglob("*.*")]
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if not cn_sync.CJK.search(text):
            continue
        found += [f"{path.relative_to(ROOT)}: “{word}” → {term}" for word, term in avoid.items() if word in text]
    assert not found, "wordings the glossary avoids (docs/glossary_CN.md, 避免):\n" + "\n".join(found)


# ----------------------------------------------------------------------------- typesetting rules
#: (rule of the glossary, pattern over the prose: no code span, formula, URL or fence)
RULES = [
    ("一个词后面只跟一对括号", re.compile(r"[\u4e00-\u9fff] \([A-Za-z][^()（）]*\) ?[（(]")),
    ("引号“”紧贴汉字，不加空格", re.compile(r"[\u4e00-\u9fff，。；：] +“|“ +| +”|” +[\u4e00-\u9fff，。；：]")),
    ("引用文献写成“Ho 等人 (2020)”", re.compile(r"[A-Z][a-z]+ 等(?=[，,]\s*(?:\d{4}|\[))|等人[，,]\s*\d{4}|等人 \d{4}")),
    ("尺寸用“×”且不加空格（28×28）", re.compile(r"\d ?x ?\d|\d ×|× \d")),
    ("比例写成百分数", re.compile(r"[½⅓¼¾]")),
    ("统一用“你”", re.compile(r"您")),
]


def test_typesetting_rules_that_a_pattern_can_check(chinese):
    found = []
    for where, kind, text in chinese:
        if kind != "markdown" or where.startswith("docs/glossary_CN.md"):  # the glossary shows what not to write
            continue
        prose = cn_sync.markdown_parts(text)["prose"]
        for rule, pattern in RULES:
            for m in pattern.finditer(prose):
                found.append(f"{where}: {rule}: …{prose[max(0, m.start() - 10):m.end() + 10]}…".replace("\n", "⏎"))
    assert not found, "typesetting rules of docs/glossary_CN.md (排版规则) broken:\n" + "\n".join(found)
