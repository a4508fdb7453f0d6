#!/usr/bin/env python
"""Keep the Chinese notebooks (notebooks/*_CN.ipynb) in step with their English twins.

    python tools/cn_sync.py --check    # list the Chinese cells that need attention; exit 1 if any
    python tools/cn_sync.py            # update the _CN notebooks in place (creates missing ones)
    python tools/cn_sync.py --show     # print the English old/new text of every stale cell
    python tools/cn_sync.py --accept   # after translating: record which English text you translated
    python tools/cn_sync.py --carry ID # the English of cell ID changed only in form: keep its Chinese
    python tools/cn_sync.py --normalise   # Chinese prose one paragraph per line (README_CN, glossary, _CN)

A notebook name (e.g. ``02``) after the flag restricts the run to the matching notebooks
(``--normalise`` takes file paths instead, e.g. copies to try it on).

How a Chinese notebook relates to its English twin:

* Code cells are the same code in the same order. Only comments may differ (be translated);
  text that the code prints is shared and stays English. ``sync`` copies every code cell from
  English, keeping the Chinese cell when its code minus comments is unchanged. Each Chinese code
  cell records the English source it follows (same metadata as below); when only the English
  comments change, lines whose English is unchanged keep their Chinese, the others become English.
* Markdown cells sit in the same places. Each one records, in its cell metadata, the English
  text it translates::

      "translation": {"source_sha": "<sha1 of the English cell's source>", "source": "<that text>"}

  ``sync`` keeps a translation whose hash still matches its English cell. For a new or changed
  English cell it puts the English text in the cell, marked with ``TODO_MARK``, leaves
  ``source_sha`` empty (so tests/test_translation_parity.py fails and names the cell) and keeps
  the old English text and old translation in the metadata for ``--show``.
* To translate such a cell: replace its text with Chinese (drop the marker line), then run
  ``--accept``, which stamps the hash of the English text stored in its metadata.
* When the English changed only in form (a typo, a link, a re-wrap), ``--carry ID`` keeps the
  cell's Chinese text (its old translation, if ``sync`` already replaced it), carries a changed
  link or code span over into it, and records the new English hash. Say so in the commit.
  Anything else still needs the Chinese twin in the same change.
* Chinese prose is stored one paragraph (or list item) per line: a line break between two Hanzi
  shows as a space in Chromium-based front-ends. ``--accept`` and ``--carry`` store the Chinese
  that way; ``--normalise`` rewrites README_CN.md, docs/glossary_CN.md and the _CN notebooks'
  markdown so (code, fences, tables, math blocks and list structure untouched).

The same helpers (code without comments, the links/formulas/code spans of a markdown cell)
are used by tests/test_translation_parity.py, so the tool and the test never disagree.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import hashlib
import io
import re
import sys
import tokenize
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SUFFIX = "_CN"
TODO_MARK = "<!-- 待翻译 (needs translation): python tools/cn_sync.py --show -->"
#: Said at the top of every Chinese notebook (in its first markdown cell).
CN_NOTE = ("> **说明：** 中英文两版笔记本运行的是同一份代码，因此代码打印出来的文字（提示信息、进度条、"
           "图表标题等）在中文版里同样是英文。")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


# ----------------------------------------------------------------------------- notebooks
def english_notebooks() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb") if not p.stem.endswith(SUFFIX))


def twin(english: Path) -> Path:
    return english.with_name(english.stem + SUFFIX + english.suffix)


def read(path: Path):
    return nbformat.read(str(path), as_version=4)


def source_sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def translation_meta(cell) -> dict:
    return cell.get("metadata", {}).get("translation", {}) or {}


# ----------------------------------------------------------------------------- code
_LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
           tokenize.ENCODING, tokenize.ENDMARKER}


def code_key(source: str) -> tuple:
    """The code of a cell without its comments and layout: equal keys mean the same code.

    Python is compared token by token; a cell that does not tokenize (``!`` or ``%`` magics)
    is compared stripped, line by line, minus ``#`` comments."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        if any(t.type == tokenize.ERRORTOKEN and t.string.strip() for t in tokens):
            raise SyntaxError("not plain Python")
        return tuple((t.type, t.string) for t in tokens if t.type not in _LAYOUT)
    except (tokenize.TokenError, SyntaxError):
        lines = (re.sub(r"(^|\s)#.*$", "", line).strip() for line in source.splitlines())
        return tuple(line for line in lines if line)


# ----------------------------------------------------------------------------- markdown
_URL = re.compile(r"https?://[\w\-.~:/?#@!$&'*+,;=%]+", re.A)


def _canonical_url(url: str) -> str:
    """A Chinese cell may link to the Chinese twin of a page: compare it as the English one."""
    url = url.strip().rstrip(".,;:!?'")
    return url.replace(SUFFIX + ".ipynb", ".ipynb").replace("README" + SUFFIX + ".md", "README.md")


def markdown_parts(text: str) -> dict:
    """What must survive translation untouched (urls, formulas, code spans, fenced code), the
    heading levels, and the remaining prose."""
    fences, prose_lines, fence, block = [], [], None, []
    for line in text.splitlines():
        marker = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if fence is None and marker:
            fence, block = marker.group(1), []
        elif fence is not None and line.strip().startswith(fence):
            fences.append(code_key("\n".join(block) + "\n"))
            fence = None
        elif fence is not None:
            block.append(line)
        else:
            prose_lines.append(line)
    s = re.sub(r"<!--.*?-->", "", "\n".join(prose_lines), flags=re.S)
    headings = [len(m.group(1)) for m in re.finditer(r"^ {0,3}(#{1,6})(?=\s|$)", s, re.M)]
    code = {" ".join(m.group(2).split()) for m in re.finditer(r"(`+)(.+?)\1", s, re.S)}  # a line break is a space
    s = re.sub(r"(`+)(.+?)\1", " ", s, flags=re.S)
    formulas = {" ".join(m.group(1).split()) for m in re.finditer(r"\$\$(.+?)\$\$", s, re.S)}
    s = re.sub(r"\$\$(.+?)\$\$", " ", s, flags=re.S)
    formulas |= {" ".join(m.group(1).split()) for m in re.finditer(r"(?<!\\)\$([^$\n]+?)\$", s)}
    s = re.sub(r"(?<!\\)\$([^$\n]+?)\$", " ", s)
    urls = []
    s = re.sub(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)[^)]*\)", lambda m: urls.append(m.group(1)) or " ", s)
    s = re.sub(r"\[([^\]]*)\]\(\s*<?([^)\s>]+)[^)]*\)", lambda m: urls.append(m.group(2)) or m.group(1), s)
    s = re.sub(r"<(https?://[^>\s]+)>", lambda m: urls.append(m.group(1)) or " ", s)
    s = re.sub(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", lambda m: urls.append(m.group(1)) or " ", s)
    s = re.sub(r"<[^>]+>", " ", s)
    s = _URL.sub(lambda m: urls.append(m.group(0)) or " ", s)
    urls = {_canonical_url(u) for u in urls if not u.endswith("glossary" + SUFFIX + ".md")}
    return {"urls": urls, "formulas": formulas, "code": code, "fences": fences,
            "headings": headings, "prose": s}


def has_prose(text: str) -> bool:
    """Whether an English markdown cell has words to translate (not only an image, a formula...)."""
    return re.search(r"[A-Za-z]{2,}", markdown_parts(text)["prose"]) is not None


def has_chinese(text: str) -> bool:
    return CJK.search(markdown_parts(text)["prose"]) is not None


# ----------------------------------------------------------------------------- one line per paragraph
#: Characters of Chinese text: Hanzi, CJK and full-width punctuation, curly quotes, ellipsis, dash.
_CJK_TEXT = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef\u2018\u2019\u201c\u201d\u2026\u2014]")
_NO_SPACE_AFTER = set("，。；：？！、（“《【")  # full-width marks that need no space before a Latin word
_NO_SPACE_BEFORE = set("，。；：？！、）”》】（")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])(?:\s|$)")
_BLOCK_START = re.compile(r"^\s*(?:#{1,6}(?:\s|$)|\||<|!\[|\[[^\]]+\]:\s|(?:[-*_]\s*){3,}$|\$\$)")


def is_cjk_text(char: str) -> bool:
    return bool(_CJK_TEXT.match(char))


def joined_with(left: str, right: str) -> str:
    """What a soft line break between ``left`` and ``right`` becomes once the lines are joined:
    nothing between Chinese characters or next to a full-width mark, a space otherwise (the
    space a browser shows between two Latin words, or between Chinese and Latin)."""
    a, b = left[-1], right[0]
    if (is_cjk_text(a) and is_cjk_text(b)) or a in _NO_SPACE_AFTER or b in _NO_SPACE_BEFORE:
        return ""
    return " "


def _hard_break(line: str) -> bool:
    return line.endswith("  ") or line.endswith("\\")


def _unwrap(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Markdown with every paragraph and list item on one line, and the (end of line, start of
    next line) pairs that were joined. Fenced code, math blocks, tables, headings, HTML, images
    and list markers stay where they are; a block quote is unwrapped inside its ``>`` marks."""
    lines, out, joins = text.split("\n"), [], []
    fence, math, joinable, i = None, False, False, 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        i += 1
        if fence is not None or math:
            out.append(line)
            if fence is not None and stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = None
            elif math and "$$" in stripped:
                math = False
            continue
        if _FENCE.match(line):
            fence, joinable = _FENCE.match(line).group(1), False
            out.append(line)
            continue
        if stripped.startswith("$$") and stripped.count("$$") == 1:
            math, joinable = True, False
            out.append(line)
            continue
        if stripped.startswith(">"):
            block = [line]
            while i < len(lines) and lines[i].lstrip().startswith(">"):
                block.append(lines[i])
                i += 1
            indent = line[:len(line) - len(line.lstrip())]
            inner, inner_joins = _unwrap("\n".join(re.sub(r"^\s*>[ ]?", "", b, count=1) for b in block))
            out += [indent + (">" + (" " + b if b else "")) for b in inner.split("\n")]
            joins += inner_joins
            joinable = False
            continue
        if not stripped:
            out.append(line)
            joinable = False
            continue
        if _BLOCK_START.match(line):
            out.append(line)
            joinable = False
            continue
        if _LIST_ITEM.match(line):
            out.append(line)
            joinable = not _hard_break(line)
            continue
        if joinable:
            left = out[-1].rstrip()
            joins.append((left, stripped))
            out[-1] = left + joined_with(left, stripped) + stripped
        else:
            out.append(line)
        joinable = not _hard_break(line)
    return "\n".join(out), joins


def normalise_markdown(text: str) -> str:
    """Chinese prose one paragraph (or list item) per line; idempotent."""
    return _unwrap(text)[0]


def cjk_line_breaks(text: str) -> list[str]:
    """The soft line breaks between two Chinese characters (each shown as ``left⏎right``)."""
    return [f"…{left[-12:]}⏎{right[:12]}…" for left, right in _unwrap(text)[1]
            if is_cjk_text(left[-1]) and is_cjk_text(right[0])]


def chinese_files() -> list[Path]:
    """Where Chinese prose lives: README_CN.md, the glossary and the _CN notebooks."""
    return [ROOT / "README_CN.md", ROOT / "docs" / "glossary_CN.md",
            *[twin(p) for p in english_notebooks() if twin(p).exists()]]


def normalise_file(path: Path) -> bool:
    """Rewrite a Markdown file, or a notebook's markdown cells, one paragraph per line.
    Returns whether anything changed (an unchanged file is not rewritten)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        nb = read(path)
        changed = False
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                new = normalise_markdown(cell.source)
                changed |= new != cell.source
                cell.source = new
        if changed:
            _write(nb, path)
        return changed
    text = path.read_text(encoding="utf-8")
    new = normalise_markdown(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


# ----------------------------------------------------------------------------- alignment
def _key(cell) -> tuple:
    if cell.cell_type == "code":
        return ("code", code_key(cell.source))
    if cell.get("metadata", {}).get("translation") is not None:  # a Chinese cell
        return ("markdown", translation_meta(cell).get("source_sha") or source_sha(translation_meta(cell).get("source", "")))
    return ("markdown", source_sha(cell.source))


def align(en_cells, cn_cells) -> list[tuple[int | None, int | None]]:
    """Pair English and Chinese cells: unchanged cells by content, the rest by cell id, else in
    order within the changed stretch (same cell type only). Unpaired: new or removed cells."""
    pairs = []
    matcher = difflib.SequenceMatcher(None, [_key(c) for c in en_cells], [_key(c) for c in cn_cells], autojunk=False)
    for tag, e0, e1, c0, c1 in matcher.get_opcodes():
        if tag == "equal":
            pairs += list(zip(range(e0, e1), range(c0, c1)))
            continue
        free = list(range(c0, c1))
        for e in range(e0, e1):
            same_type = [c for c in free if cn_cells[c].cell_type == en_cells[e].cell_type]
            by_id = [c for c in same_type if en_cells[e].get("id") and cn_cells[c].get("id") == en_cells[e].get("id")]
            c = (by_id or same_type or [None])[0]
            if c is not None:
                free.remove(c)
            pairs.append((e, c))
        pairs += [(None, c) for c in free]
    # keep the Chinese order for removed cells, the English order for everything else
    return sorted(pairs, key=lambda p: (p[0] if p[0] is not None else _before(pairs, p[1]), p[0] is not None))


def _before(pairs, cn_index) -> float:
    earlier = [e for e, c in pairs if e is not None and c is not None and c < cn_index]
    return max(earlier, default=-1) + 0.5


# ----------------------------------------------------------------------------- sync
def _same_id(en_cell) -> dict:
    """A Chinese cell keeps its English cell's id (nbformat 4.5), which helps the alignment."""
    return {"id": en_cell["id"]} if en_cell.get("id") else {}


def _placeholder(en_cell, old_cn=None, first=False):
    text = TODO_MARK + "\n" + en_cell.source + ("\n\n" + CN_NOTE if first else "")
    cell = nbformat.v4.new_markdown_cell(text, **_same_id(en_cell))
    cell.metadata = copy.deepcopy(dict(en_cell.metadata))
    meta = {"source_sha": "", "source": en_cell.source}
    if old_cn is not None:
        old = translation_meta(old_cn)
        if old.get("previous_source") is not None:  # still untranslated: keep the last translated pair
            meta.update(previous_source=old["previous_source"], previous_translation=old.get("previous_translation", ""))
        else:
            meta.update(previous_source=old.get("source", ""), previous_translation=old_cn.source)
    cell.metadata["translation"] = meta
    return cell


def _merge_comments(en_new: str, en_old: str | None, cn_old: str) -> str:
    """The new English code cell, with the Chinese version of every line whose English did not
    change (a comment translation keeps the lines, so old English line i is Chinese line i)."""
    if en_old is None or len(en_old.splitlines()) != len(cn_old.splitlines()):
        return en_new
    chinese = dict(zip(en_old.splitlines(), cn_old.splitlines()))
    merged = "\n".join(chinese.get(line, line) for line in en_new.splitlines())
    return merged if code_key(merged) == code_key(en_new) else en_new


def sync(en_nb, cn_nb, label: str = "") -> tuple:
    """Return the updated Chinese notebook and a list of (is_problem, message) about it."""
    report, cells = [], []
    cn_cells = cn_nb.cells if cn_nb is not None else []
    first_md = next((i for i, c in enumerate(en_nb.cells) if c.cell_type == "markdown"), None)

    def say(problem, e, c, what):
        where = f"English cell {e + 1}" if e is not None else f"Chinese cell {c + 1}"
        cell = en_nb.cells[e] if e is not None else cn_cells[c]
        report.append((problem, f"{label}{where} (id {cell.get('id')}, {cell.cell_type}): {what}"))

    for e, c in align(en_nb.cells, cn_cells):
        en, cn = (en_nb.cells[e] if e is not None else None), (cn_cells[c] if c is not None else None)
        if en is None:
            say(True, e, c, "removed from the English notebook; dropped")
            continue
        if en.cell_type == "code":
            new = nbformat.v4.new_code_cell(en.source, **_same_id(en))
            new.metadata = copy.deepcopy(dict(en.metadata))
            if cn is None:
                say(True, e, c, "new code cell; copied from English")
            elif code_key(cn.source) != code_key(en.source):
                say(True, e, c, "the code changed; copied from English (translate its comments again if you like)")
            elif translation_meta(cn).get("source_sha") in (None, source_sha(en.source)) or cn.source == en.source:
                new.source = cn.source  # same English code and comments: keep the Chinese comments
            else:
                new.source = _merge_comments(en.source, translation_meta(cn).get("source"), cn.source)
                say(False, e, c, "note: only the English comments changed; lines whose English is unchanged kept "
                                 "their Chinese comments, the others are English now")
            if cn is not None and (cn.get("outputs") or cn.get("execution_count") is not None):
                say(True, e, c, "outputs were stored; stripped")
            new.metadata["translation"] = {"source_sha": source_sha(en.source), "source": en.source}
            cells.append(new)
        elif en.cell_type == "markdown":
            meta = translation_meta(cn) if cn is not None else {}
            if cn is not None and meta.get("source_sha") == source_sha(en.source):
                kept = copy.deepcopy(cn)
                kept.metadata = {**copy.deepcopy(dict(en.metadata)), "translation": meta}
                kept.update(_same_id(en))
                cells.append(kept)
            elif cn is not None and meta.get("source_sha") == "" and meta.get("source") == en.source:
                say(True, e, c, "waiting for translation (run --accept once translated)")
                cells.append(copy.deepcopy(cn))
                cells[-1].update(_same_id(en))
            else:
                say(True, e, c, "new English text, needs translation" if cn is None
                    else "the English text changed since it was translated; needs translation")
                cells.append(_placeholder(en, cn, first=(e == first_md)))
        else:  # raw cells travel as they are
            cells.append(copy.deepcopy(en))
    out = copy.deepcopy(en_nb)
    out.cells = cells
    if (out.nbformat, out.nbformat_minor) < (4, 5):  # cell ids came with nbformat 4.5
        for cell in out.cells:
            cell.pop("id", None)
    out.metadata.pop("widgets", None)
    return out, report


def accept(cn_nb, label: str = "") -> list[str]:
    """Stamp translated cells (marker removed, Chinese text present) with their English hash."""
    done = []
    for i, cell in enumerate(cn_nb.cells):
        meta = translation_meta(cell)
        if cell.cell_type == "markdown" and meta.get("source_sha") == "" and TODO_MARK not in cell.source:
            meta["source_sha"] = source_sha(meta.get("source", ""))
            cell.source = normalise_markdown(cell.source)
            meta.pop("previous_source", None)
            meta.pop("previous_translation", None)
            done.append(f"{label}cell {i + 1} (id {cell.get('id')}): translation accepted")
    return done


def _ordered_parts(text: str) -> dict:
    """The links and code spans of a markdown text, in order (markdown_parts gives sets)."""
    bare = re.sub(r"\]\([^)]*\)|<https?://[^>\s]+>", " ", text)
    return {"urls": re.findall(r"\]\(\s*<?([^)\s>]+)", text) + re.findall(r"<(https?://[^>\s]+)>", text)
            + _URL.findall(bare),
            "code": [m.group(0) for m in re.finditer(r"(`+)(.+?)\1", text, re.S)],
            "formulas": re.findall(r"\$\$.+?\$\$|(?<!\\)\$[^$\n]+?\$", text, re.S)}


def _words_changed(old: str, new: str) -> int:
    """How many words of the English prose a change touched (links, code and maths aside)."""
    a, b = markdown_parts(old)["prose"].split(), markdown_parts(new)["prose"].split()
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return sum(max(i1 - i0, j1 - j0) for tag, i0, i1, j0, j1 in ops if tag != "equal")


class CarryError(ValueError):
    """``--carry`` cannot keep this cell's Chinese text; the message says why and what to do."""


def carry(en_nb, cn_nb, cell_id: str, force: bool = False) -> str:
    """Keep the Chinese text of cell ``cell_id`` for the English text as it is now: for an English
    change of form only (a typo, a link, a re-wrap). A link or code span that changed in English
    is changed in the Chinese text too; a formula or a different number of links or code spans,
    or more than a few words changed, is refused (``force`` accepts the word count). Returns a
    one-line summary for the commit message."""
    en = next((c for c in en_nb.cells if c.get("id") == cell_id), None)
    cn = next((c for c in cn_nb.cells if c.get("id") == cell_id), None)
    if en is None or cn is None:
        raise CarryError(f"no cell with id {cell_id!r} in both notebooks")
    meta = translation_meta(cn)
    if cn.cell_type == "code":
        if code_key(cn.source) != code_key(en.source):
            raise CarryError(f"cell {cell_id}: the code itself changed; run `python tools/cn_sync.py` to take it")
        cn.metadata["translation"] = {"source_sha": source_sha(en.source), "source": en.source}
        return f"cell {cell_id}: English comments changed in form only; Chinese comments kept"
    waiting = meta.get("source_sha") == "" and "previous_source" in meta
    old_en = meta.get("previous_source") if waiting else meta.get("source")
    chinese = meta.get("previous_translation") if waiting else cn.source
    if meta.get("source_sha") == source_sha(en.source):
        return f"cell {cell_id}: already up to date"
    if not old_en or not chinese or TODO_MARK in chinese:
        raise CarryError(f"cell {cell_id}: there is no earlier translation to keep; translate it (`--show`)")
    before, after = _ordered_parts(old_en), _ordered_parts(en.source)
    for part in ("urls", "code", "formulas"):
        if len(before[part]) != len(after[part]) or (part == "formulas" and before[part] != after[part]):
            raise CarryError(f"cell {cell_id}: the English {part} changed in more than their spelling; "
                             "translate the cell (`--show` prints the change)")
        for old, new in zip(before[part], after[part]):
            if old != new:
                if old not in chinese:
                    raise CarryError(f"cell {cell_id}: {old!r} changed in English but is not in the Chinese text")
                chinese = chinese.replace(old, new)
    words = _words_changed(old_en, en.source)
    if words > 3 and not force:
        raise CarryError(f"cell {cell_id}: {words} English words changed, more than a typo; translate the cell "
                         "(`--show`), or add --force if the meaning really is the same")
    cn.source = normalise_markdown(chinese)
    cn.metadata["translation"] = {"source_sha": source_sha(en.source), "source": en.source}
    return f"cell {cell_id}: English changed in form only ({words} word(s)); Chinese kept"


def show(en_nb, cn_nb, label: str = "") -> None:
    for e, c in align(en_nb.cells, cn_nb.cells):
        if e is None or c is None or en_nb.cells[e].cell_type != "markdown":
            continue
        en, cn = en_nb.cells[e], cn_nb.cells[c]
        meta = translation_meta(cn)
        if meta.get("source_sha") == source_sha(en.source):
            continue
        old = meta.get("previous_source") if meta.get("source_sha") == "" else meta.get("source")
        translated = meta.get("previous_translation") if meta.get("source_sha") == "" else cn.source
        print(f"===== {label}cell {c + 1} (id {cn.get('id')})")
        if old is None:
            print("----- new English text:\n" + en.source)
        else:
            print("----- English, old -> new:")
            print("\n".join(difflib.unified_diff(old.splitlines(), en.source.splitlines(), "old", "new", lineterm="")))
            print("----- the old translation:\n" + (translated or ""))
        print()


def _write(nb, path: Path) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cn_sync", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="list what needs attention, change nothing; exit 1 if anything")
    mode.add_argument("--show", action="store_true", help="print the English old/new text of stale cells")
    mode.add_argument("--accept", action="store_true", help="stamp translated cells with their English hash")
    mode.add_argument("--carry", metavar="CELL_ID",
                      help="the English of this cell changed only in form (typo, link, wrap): keep its Chinese")
    mode.add_argument("--normalise", action="store_true",
                      help="Chinese prose one paragraph per line in README_CN, the glossary and the _CN notebooks "
                           "(or in the files given)")
    parser.add_argument("--force", action="store_true", help="with --carry: accept more than a few changed words")
    parser.add_argument("notebooks", nargs="*", help="only the English notebooks whose name contains one of these "
                                                     "(with --normalise: the files to rewrite)")
    args = parser.parse_args(argv)
    if args.normalise:
        files = [Path(f) for f in args.notebooks] or chinese_files()
        for path in files:
            print(f"{path}: {'one line per paragraph now' if normalise_file(path) else 'unchanged'}")
        return 0
    if args.carry:
        return _carry_main(args)
    problems = 0
    for en_path in english_notebooks():
        if args.notebooks and not any(n in en_path.name for n in args.notebooks):
            continue
        cn_path = twin(en_path)
        label = f"{cn_path.relative_to(ROOT)}: "
        en_nb = read(en_path)
        cn_nb = read(cn_path) if cn_path.exists() else None
        if args.show:
            if cn_nb is not None:
                show(en_nb, cn_nb, label)
            continue
        if args.accept:
            if cn_nb is not None:
                print("\n".join(accept(cn_nb, label)) or f"{label}nothing to accept")
                _write(cn_nb, cn_path)
            continue
        if cn_nb is None:
            print(f"{label}missing; {'run without --check to create it' if args.check else 'created'}")
            problems += 1
        new, report = sync(en_nb, cn_nb, label)
        if cn_nb is not None and cn_nb.metadata.get("widgets"):
            report.append((True, f"{label}widget state was stored; stripped"))
        for problem, message in report:
            print(message)
        problems += sum(problem for problem, _ in report)
        if not args.check:
            _write(new, cn_path)
    if args.check or not (args.show or args.accept):
        print(f"{problems} Chinese cell(s) need attention" if problems else "The Chinese notebooks are in step.")
    return 1 if args.check and problems else 0


def _carry_main(args) -> int:
    found = []
    for en_path in english_notebooks():
        cn_path = twin(en_path)
        if (args.notebooks and not any(n in en_path.name for n in args.notebooks)) or not cn_path.exists():
            continue
        cn_nb = read(cn_path)
        if any(c.get("id") == args.carry for c in cn_nb.cells):
            found.append((en_path, cn_path, cn_nb))
    if len(found) != 1:
        print(f"--carry: no Chinese notebook has a cell with id {args.carry!r}" if not found else
              f"--carry: {', '.join(p.name for _, p, _ in found)} all have a cell {args.carry!r}: name the notebook "
              f"too (e.g. `--carry {args.carry} 02`)", file=sys.stderr)
        return 1
    en_path, cn_path, cn_nb = found[0]
    try:
        message = carry(read(en_path), cn_nb, args.carry, force=args.force)
    except CarryError as err:
        print(f"--carry: {cn_path.name}: {err}", file=sys.stderr)
        return 1
    if message.endswith("already up to date"):
        print(f"{cn_path.relative_to(ROOT)}: {message}; nothing to do")
        return 0
    _write(cn_nb, cn_path)
    print(f"{cn_path.relative_to(ROOT)}: {message}. Say so in the commit message.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
