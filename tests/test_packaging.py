"""Set-up stays coherent: pyproject vs environment.yml, README badges, one repository URL."""
import json
import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement

from course_utils import links

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


def test_notebook_setup_cells_install_from_the_one_repository_url():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        first_code = next("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert links.PIP_SPEC in first_code, f"{nb.name}: the set-up cell must install {links.PIP_SPEC}"


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
