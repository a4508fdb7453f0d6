"""The Chinese edition says what the English one says: same code, same cells, fresh translations.

Every English notebook has a twin ``<name>_CN.ipynb``: the same code cells in the same order
(comments may be translated), markdown cells in the same places, each translated into Chinese
with its links, formulas and code spans untouched and the same headings, and each markdown cell
recording the hash of the English text it translates. README_CN.md has README.md's sections.
``python tools/cn_sync.py --check`` says what to do when this fails. How every notebook is stored
(no outputs, no widget state) is checked for all four in test_notebooks_stored.py.
"""
import re
from pathlib import Path

import pytest

from tools import cn_sync

ROOT = Path(__file__).resolve().parents[1]

FIX = "run `python tools/cn_sync.py --check` (and without --check to update the _CN notebook)"
ENGLISH = cn_sync.english_notebooks()


@pytest.fixture(params=ENGLISH, ids=[p.stem for p in ENGLISH])
def pair(request):
    en_path = request.param
    cn_path = cn_sync.twin(en_path)
    assert cn_path.exists(), f"{en_path.name} has no Chinese twin {cn_path.name}: {FIX}"
    return cn_sync.read(en_path), cn_sync.read(cn_path), cn_path.name


def _markdown_pairs(en_nb, cn_nb):
    en_md = [(i, c) for i, c in enumerate(en_nb.cells) if c.cell_type == "markdown"]
    cn_md = [(i, c) for i, c in enumerate(cn_nb.cells) if c.cell_type == "markdown"]
    assert len(en_md) == len(cn_md)
    return [(i, en, cn) for (i, en), (_, cn) in zip(en_md, cn_md)]


def test_both_notebooks_have_english_originals_and_chinese_twins():
    names = {p.name for p in ENGLISH}
    assert {"01_introduction_to_diffusers.ipynb", "02_diffusion_models_from_scratch.ipynb"} <= names
    for cn in (ROOT / "notebooks").glob(f"*{cn_sync.SUFFIX}.ipynb"):
        assert cn.name.replace(cn_sync.SUFFIX + ".", ".") in names, f"{cn.name} has no English original"


def test_same_cells_in_the_same_places(pair):
    en_nb, cn_nb, name = pair
    en_types = [c.cell_type for c in en_nb.cells]
    cn_types = [c.cell_type for c in cn_nb.cells]
    assert cn_types == en_types, f"{name}: cells are not in the same places as in English: {FIX}"


def test_same_code_once_comments_are_removed(pair):
    en_nb, cn_nb, name = pair
    en_code = [c for c in en_nb.cells if c.cell_type == "code"]
    cn_code = [c for c in cn_nb.cells if c.cell_type == "code"]
    assert len(cn_code) == len(en_code), f"{name}: {len(cn_code)} code cells, English has {len(en_code)}: {FIX}"
    differ = [f"code cell {k + 1} (id {en.get('id')})" for k, (en, cn) in enumerate(zip(en_code, cn_code))
              if cn_sync.code_key(en.source) != cn_sync.code_key(cn.source)]
    assert not differ, f"{name}: code differs from English in {', '.join(differ)}: {FIX}"


def test_every_markdown_cell_is_translated(pair):
    en_nb, cn_nb, name = pair
    untranslated = [f"cell {i + 1} (id {cn.get('id')})" for i, en, cn in _markdown_pairs(en_nb, cn_nb)
                    if cn_sync.TODO_MARK in cn.source
                    or (cn_sync.has_prose(en.source) and not cn_sync.has_chinese(cn.source))]
    assert not untranslated, f"{name}: no Chinese text in {', '.join(untranslated)}: {FIX}"


def test_links_formulas_code_spans_and_headings_are_untouched(pair):
    en_nb, cn_nb, name = pair
    problems = []
    for i, en, cn in _markdown_pairs(en_nb, cn_nb):
        en_parts, cn_parts = cn_sync.markdown_parts(en.source), cn_sync.markdown_parts(cn.source)
        for part in ("urls", "formulas", "code", "fences", "headings"):
            if en_parts[part] != cn_parts[part]:
                missing = en_parts[part] - cn_parts[part] if isinstance(en_parts[part], set) else en_parts[part]
                extra = cn_parts[part] - en_parts[part] if isinstance(en_parts[part], set) else cn_parts[part]
                problems.append(f"cell {i + 1} (id {cn.get('id')}) {part}: English has {missing}, Chinese has {extra}")
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_translations_are_fresh(pair):
    en_nb, cn_nb, name = pair
    stale = [f"cell {i + 1} (id {cn.get('id')})" for i, en, cn in _markdown_pairs(en_nb, cn_nb)
             if cn_sync.translation_meta(cn).get("source_sha") != cn_sync.source_sha(en.source)]
    assert not stale, (f"{name}: the English text changed since {', '.join(stale)} were translated "
                       f"(or they were never marked as translated): {FIX}; `--show` prints what changed, "
                       "`--accept` records a finished translation")


def _flat(markdown: str) -> str:
    """Markdown without blockquote marks and whitespace: Chinese re-wrapped anywhere reads the same."""
    return "".join(re.sub(r"(?m)^\s*>\s?", "", markdown).split())


def test_first_markdown_cell_says_printed_text_stays_english(pair):
    _, cn_nb, name = pair
    first = next(c for c in cn_nb.cells if c.cell_type == "markdown")
    assert _flat(cn_sync.CN_NOTE) in _flat(first.source), \
        f"{name}: the first markdown cell must contain cn_sync.CN_NOTE (printed text stays English)"


def test_the_note_check_survives_a_rewrap():
    rewrapped = cn_sync.CN_NOTE[:30] + "\n> " + cn_sync.CN_NOTE[30:]
    assert _flat(cn_sync.CN_NOTE) in _flat(f"# 标题\n\n{rewrapped}")
    assert _flat(cn_sync.CN_NOTE) not in _flat(cn_sync.CN_NOTE.replace("英文", "中文"))


# ----------------------------------------------------------------------------- README_CN.md
def _headings(text):
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [(len(m.group(1)), m.start()) for m in re.finditer(r"^(#{2,3}) ", text, re.M)], text


def test_readme_cn_has_the_same_sections():
    en, en_text = _headings((ROOT / "README.md").read_text(encoding="utf-8"))
    cn, cn_text = _headings((ROOT / "README_CN.md").read_text(encoding="utf-8"))
    assert [level for level, _ in cn] == [level for level, _ in en], "README_CN.md: not README.md's ## / ### headings"
    marker = "<!-- benchmark figures -->"
    where = [sum(pos < text.index(marker) for _, pos in heads) for heads, text in ((en, en_text), (cn, cn_text))]
    assert where[0] == where[1], f"README_CN.md: {marker} must sit in the same section as in README.md"


def test_readme_cn_links_setup_and_glossary():
    en = (ROOT / "README.md").read_text(encoding="utf-8")
    cn = (ROOT / "README_CN.md").read_text(encoding="utf-8")
    assert "[简体中文](README_CN.md)" in en.splitlines()[2]
    assert "[English](README.md) | **简体中文**" in cn.splitlines()[2]
    assert "(docs/glossary_CN.md)" in cn and (ROOT / "docs" / "glossary_CN.md").is_file()
    assert "HF_ENDPOINT=https://hf-mirror.com" in cn and "HF_HUB_OFFLINE=1" in cn
    en_urls = {cn_sync._canonical_url(u) for u in re.findall(r"\]\(([^)\s]+)\)", en)}
    cn_urls = {cn_sync._canonical_url(u) for u in re.findall(r"\]\(([^)\s]+)\)", cn)}
    assert en_urls <= cn_urls, f"README_CN.md lacks links of README.md: {sorted(en_urls - cn_urls)}"
    # the set-up section (same place as README.md's "## Set-up") gives the same two commands first
    en_sections = re.split(r"^## ", en, flags=re.M)
    cn_sections = re.split(r"^## ", cn, flags=re.M)
    index = next(i for i, s in enumerate(en_sections) if s.startswith("Set-up"))
    block = re.search(r"```bash\n(.*?)```", cn_sections[index], re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make course", "make test"]


def _spans_and_numbers(markdown):
    """Inline code spans and numbers outside links and fenced blocks: what a translation never changes."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    text = re.sub(r"\]\([^)\s]+\)", "]", text)
    return set(re.findall(r"`([^`\n]+)`", text)), set(re.findall(r"\d[\d,.]*\d|\d", text))


def test_readme_cn_keeps_every_code_span_and_number():
    """A paragraph lost in a merge (README_CN kept one wrapped line of it) shows up here."""
    en_code, en_numbers = _spans_and_numbers((ROOT / "README.md").read_text(encoding="utf-8"))
    cn_code, cn_numbers = _spans_and_numbers((ROOT / "README_CN.md").read_text(encoding="utf-8"))
    assert en_code <= cn_code, f"README_CN.md lacks code spans of README.md: {sorted(en_code - cn_code)}"
    written_otherwise = {"309"}  # 309k parameters: 约 30.9 万参数
    missing = en_numbers - cn_numbers - written_otherwise
    assert not missing, f"README_CN.md lacks numbers of README.md: {sorted(missing)}"


def test_glossary_is_one_table():
    text = (ROOT / "docs" / "glossary_CN.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows[0].startswith("| English | 中文")
    english = [row.split("|")[1].strip().lower() for row in rows[2:]]
    assert len(english) == len(set(english)), "the glossary lists an English term twice"


# ----------------------------------------------------------------------------- the sync tool
def _nb(*cells):
    import nbformat

    nb = nbformat.v4.new_notebook()
    for kind, cell_id, text in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(make(text, id=cell_id))
    return nb


def _translate(cn_nb, texts):
    for cell in cn_nb.cells:
        if cell.get("id") in texts:
            cell.source = texts[cell.id]
    return cn_sync.accept(cn_nb)


def test_code_key_ignores_comments_only():
    assert cn_sync.code_key("x = 1  # one\n# a comment\ny = 2\n") == cn_sync.code_key("x = 1  # 一\ny = 2")
    assert cn_sync.code_key("x = 1\n") != cn_sync.code_key("x = 2\n")
    assert cn_sync.code_key("!pip install x  # quiet\n%time f()\n") == cn_sync.code_key("!pip install x  # 安静\n%time f()")
    assert cn_sync.code_key("!pip install x\n") != cn_sync.code_key("!pip install y\n")


def test_sync_keeps_fresh_translations_and_marks_the_rest():
    en = _nb(("markdown", "a", "# Title\n\nHello `x` and $y$."), ("code", "c", "x = 1  # one"),
             ("markdown", "b", "Some [link](https://example.org)."))
    cn, report = cn_sync.sync(en, None)
    assert len(report) == 3 and all(problem for problem, _ in report)
    assert [c.cell_type for c in cn.cells] == ["markdown", "code", "markdown"]
    assert cn.cells[0].source.startswith(cn_sync.TODO_MARK) and cn_sync.CN_NOTE in cn.cells[0].source
    cn.cells[1].source = "x = 1  # 一"
    _translate(cn, {"a": "# 标题\n\n" + cn_sync.CN_NOTE + "\n\n你好 `x` 和 $y$。", "b": "一个[链接](https://example.org)。"})
    again, report = cn_sync.sync(en, cn)
    assert not [m for problem, m in report if problem]
    assert again.cells[1].source == "x = 1  # 一"  # translated comment kept
    # English changes: one markdown cell edited, a code cell changed, a cell added, one removed
    en.cells[2].source = "Some [link](https://example.org), changed."
    en.cells[1].source = "x = 2  # two"
    en.cells.append(_nb(("markdown", "d", "New text.")).cells[0])
    en.cells.insert(0, _nb(("code", "z", "import os")).cells[0])
    synced, report = cn_sync.sync(en, again)
    problems = "\n".join(m for problem, m in report if problem)
    assert "id b" in problems and "id c" in problems and "id d" in problems and "id z" in problems
    assert "id a" not in problems
    assert [c.get("id") for c in synced.cells] == ["z", "a", "c", "b", "d"]
    assert synced.cells[2].source == "x = 2  # two"  # changed code comes from English
    changed = synced.cells[3]
    assert cn_sync.TODO_MARK in changed.source and changed.metadata["translation"]["source_sha"] == ""
    assert changed.metadata["translation"]["previous_translation"] == "一个[链接](https://example.org)。"
    # a removed English cell disappears from the Chinese notebook
    del en.cells[1]
    synced2, report = cn_sync.sync(en, synced)
    assert [c.get("id") for c in synced2.cells] == ["z", "c", "b", "d"]
    assert any("id a" in m and "removed" in m for _, m in report)


def test_markdown_parts_find_what_must_stay_untouched():
    parts = cn_sync.markdown_parts("## Head\n\nSee [the docs](https://x.org/a) and `f(x)`, $a+b$,\n\n"
                                   "$$c = d$$\n\n```python\nx = 1  # c\n```\n<!-- note -->")
    assert parts["urls"] == {"https://x.org/a"} and parts["code"] == {"f(x)"}
    assert parts["formulas"] == {"a+b", "c = d"} and parts["headings"] == [2]
    assert len(parts["fences"]) == 1 and "note" not in parts["prose"]
    assert cn_sync.has_prose("See the docs.") and not cn_sync.has_prose("![img](https://x.org/p.png)\n\n$$a$$")
    assert cn_sync._canonical_url("notebooks/01_x_CN.ipynb") == "notebooks/01_x.ipynb"


def test_sync_keeps_chinese_comments_of_unchanged_lines_when_only_english_comments_change():
    en = _nb(("code", "c", "# setup\nx = 1  # one\ny = 2"))
    cn, _ = cn_sync.sync(en, None)
    cn.cells[0].source = "# 准备\nx = 1  # 一\ny = 2"
    en.cells[0].source = "# setup\n# a new commented-out line: z = 3\nx = 1  # one, changed\ny = 2"
    synced, report = cn_sync.sync(en, cn)
    assert synced.cells[0].source == "# 准备\n# a new commented-out line: z = 3\nx = 1  # one, changed\ny = 2"
    assert not [m for problem, m in report if problem] and any("comments changed" in m for _, m in report)


# ----------------------------------------------------------------------------- changes of form: --carry
def _translated(english: str, chinese: str):
    en = _nb(("markdown", "a", english), ("code", "c", "x = 1  # one"))
    cn, _ = cn_sync.sync(en, None)
    cn.cells[1].source = "x = 1  # 一"
    _translate(cn, {"a": chinese})
    return en, cn


@pytest.mark.parametrize("synced_first", [False, True], ids=["before sync", "after sync"])
def test_carry_keeps_the_chinese_when_the_english_changed_only_in_form(synced_first):
    en, cn = _translated("Teh [docs](https://a.org/x) and `f(x)`.", "[文档](https://a.org/x)和 `f(x)`。")
    en.cells[0].source = "The [docs](https://a.org/y) and\n`f(y)`."  # a typo, a link, a code span, a wrap
    if synced_first:  # sync already put the English in with the to-do mark
        cn, _ = cn_sync.sync(en, cn)
    message = cn_sync.carry(en, cn, "a")
    assert cn.cells[0].source == "[文档](https://a.org/y)和 `f(y)`。" and "form only" in message
    assert cn_sync.translation_meta(cn.cells[0]) == {"source_sha": cn_sync.source_sha(en.cells[0].source),
                                                     "source": en.cells[0].source}
    _, report = cn_sync.sync(en, cn)
    assert not [m for problem, m in report if problem]


@pytest.mark.parametrize("new_english, why", [
    ("A [link](https://a.org/x), `f(x)` and a whole new sentence about something else entirely.", "words changed"),
    ("The [docs](https://a.org/x), `f(x)` and $y$.", "formulas"),
    ("The [docs](https://a.org/x), [more](https://b.org) and `f(x)`.", "urls"),
])
def test_carry_refuses_a_change_of_meaning(new_english, why):
    en, cn = _translated("The [docs](https://a.org/x) and `f(x)`.", "[文档](https://a.org/x)和 `f(x)`。")
    en.cells[0].source = new_english
    with pytest.raises(cn_sync.CarryError, match=why):
        cn_sync.carry(en, cn, "a")
    assert cn.cells[0].source == "[文档](https://a.org/x)和 `f(x)`。"  # nothing changed


def test_carry_keeps_chinese_comments_and_refuses_new_cells():
    en, cn = _translated("Text.", "文字。")
    en.cells[1].source = "x = 1  # one, fixed"
    cn_sync.carry(en, cn, "c")
    assert cn.cells[1].source == "x = 1  # 一"
    assert cn_sync.translation_meta(cn.cells[1])["source_sha"] == cn_sync.source_sha("x = 1  # one, fixed")
    en.cells.append(_nb(("markdown", "new", "New text.")).cells[0])
    synced, _ = cn_sync.sync(en, cn)
    with pytest.raises(cn_sync.CarryError, match="no earlier translation"):
        cn_sync.carry(en, synced, "new")


def test_accept_stores_chinese_one_paragraph_per_line():
    _, cn = _translated("Hello.", "你好，\n世界。\n\n- 一\n  二")
    assert cn.cells[0].source == "你好，世界。\n\n- 一二"


def test_normalise_command_rewrites_the_files_given(tmp_path, capsys):
    md = tmp_path / "x.md"
    md.write_text("第一行\n第二行\n\n```\n代码\n行\n```\n", encoding="utf-8")
    assert cn_sync.main(["--normalise", str(md)]) == 0
    assert md.read_text(encoding="utf-8") == "第一行第二行\n\n```\n代码\n行\n```\n"
    assert cn_sync.main(["--normalise", str(md)]) == 0 and "unchanged" in capsys.readouterr().out


def test_carry_command_updates_the_chinese_notebook(tmp_path, monkeypatch, capsys):
    import nbformat

    en, cn = _translated("Teh docs.", "文档。")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setattr(cn_sync, "ROOT", tmp_path)
    monkeypatch.setattr(cn_sync, "NOTEBOOKS", tmp_path / "notebooks")
    en.cells[0].source = "The docs."
    nbformat.write(en, str(tmp_path / "notebooks" / "01_x.ipynb"))
    nbformat.write(cn, str(tmp_path / "notebooks" / "01_x_CN.ipynb"))
    assert cn_sync.main(["--check"]) == 1  # the English changed: the gate holds
    assert cn_sync.main(["--carry", "a"]) == 0 and "Say so in the commit message" in capsys.readouterr().out
    assert cn_sync.main(["--check"]) == 0
    assert cn_sync.read(tmp_path / "notebooks" / "01_x_CN.ipynb").cells[0].source == "文档。"
    assert cn_sync.main(["--carry", "missing"]) == 1
