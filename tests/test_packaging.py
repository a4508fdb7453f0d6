"""Set-up stays coherent: pyproject vs environment.yml, README badges, one repository URL."""
import re
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from course_utils import links

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (pyproject's dev extra)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}  # conda's name for the same package


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python", "pip"))]
    reqs = {}
    for spec in conda:
        req = Requirement(spec)
        reqs[_norm(CONDA_TO_PIP.get(req.name, req.name))] = str(req.specifier)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return reqs, pip


def test_environment_yml_matches_pyproject():
    project = _pyproject()["project"]
    wanted = {_norm(Requirement(r).name): str(Requirement(r).specifier)
              for r in project["dependencies"] + project["optional-dependencies"]["jupyter"]
              + project["optional-dependencies"]["book"]}
    conda, pip = _environment_requirements()
    assert conda == wanted, "environment.yml and pyproject.toml (dependencies + [jupyter] + [book]) disagree"
    assert "-e ." in pip  # the package itself, through pip


def test_torch_is_not_pinned_in_the_package():
    torch_req = next(Requirement(r) for r in _pyproject()["project"]["dependencies"] if r.startswith("torch"))
    assert all(spec.operator == ">=" for spec in torch_req.specifier)


def _badges(readme: Path):
    text = readme.read_text()
    return re.findall(r"\((https://colab\.research\.google\.com/github/[^)\s]+)\)", text), \
        re.findall(r"\((https://kaggle\.com/kernels/welcome\?src=[^)\s]+)\)", text)


def test_every_badge_points_at_an_existing_notebook():
    for readme in (ROOT / "README.md", ROOT / "README_CN.md"):
        if not readme.exists():
            continue
        colab, kaggle = _badges(readme)
        assert len(colab) == len(kaggle) == 2, f"{readme.name}: one Colab and one Kaggle badge per notebook"
        for url in colab + kaggle:
            path = url.split(f"/blob/{links.BRANCH}/", 1)[-1]
            assert url in (links.colab_url(path), links.kaggle_url(path)), f"{url} does not use links.REPO_URL"
            assert (ROOT / path).is_file(), f"{readme.name} badge points at missing {path}"


def test_readme_setup_gives_exactly_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", setup, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make course", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.M), ".ci/run must run the README's test command"
    assert "HF_HUB_OFFLINE=1" in ci and "COURSE_QUICK=1" in ci


def test_module_names_do_not_shadow_popular_packages():
    shadowed = {"datasets", "diffusers", "torch", "accelerate", "matplotlib", "ipywidgets", "numpy", "PIL", "tqdm"}
    modules = {p.stem for p in (ROOT / "course_utils").glob("*.py")}
    assert not modules & shadowed


def test_ipywidgets_8_1_9_is_excluded_and_colab_s_7_7_still_allowed():
    from importlib.metadata import version

    pip = next(Requirement(r) for r in _pyproject()["project"]["dependencies"] if r.startswith("ipywidgets"))
    conda, _ = _environment_requirements()
    for specifier in (pip.specifier, SpecifierSet(conda["ipywidgets"])):
        assert "8.1.9" not in specifier, "ipywidgets 8.1.9 renders nothing in VS Code (microsoft/vscode-jupyter#17504)"
        assert all(v in specifier for v in ("7.7.1", "8.1.5", "8.1.8")), "Colab (7.7.1) and Kaggle (8.1.5) must work"
    assert version("ipywidgets") in pip.specifier, "the installed ipywidgets is one the package excludes"


def test_make_benchmark_runs_the_fast_benchmarks_and_benchmark_long_the_rest():
    makefile = (ROOT / "Makefile").read_text()
    fast = re.search(r"^FAST_BENCHMARKS = (.*)$", makefile, re.M).group(1).split()
    long = re.search(r"^LONG_BENCHMARKS = (.*)$", makefile, re.M).group(1).split()
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__"}
    assert sorted(fast + long) == sorted(scripts), "every benchmark in exactly one of the two lists"
    assert {"notebook01_cpu", "mnist_sample_quality"} <= set(long)  # full notebook runs and sample quality
    assert re.search(r"^benchmark:.*\n\tfor b in \$\(FAST_BENCHMARKS\)", makefile, re.M)
    assert re.search(r"^benchmark-long:.*\n\tfor b in \$\(LONG_BENCHMARKS\)", makefile, re.M)


def test_no_import_path_hacks():
    # Spelled in pieces so that this file does not find itself.
    path_edits = ("sys.path." + "insert", "sys.path." + "append")
    by_file_path = "spec_from_" + "file_location"
    for folder in ("benchmarks", "tools", "tests"):
        for path in (ROOT / folder).glob("*.py"):
            text = path.read_text()
            assert not any(edit in text for edit in path_edits), f"{path}: import the package instead"
            if folder == "tests":
                assert by_file_path not in text, f"{path.name}: import benchmarks.X or tools.X instead"


def test_both_readmes_link_to_the_reading_edition():
    assert f"]({links.SITE_URL})" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"]({links.SITE_URL}zh/)" in (ROOT / "README_CN.md").read_text(encoding="utf-8")
