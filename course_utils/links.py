"""Where the course lives: the one place that names the repository.

The README badges, the notebooks' Colab/Kaggle set-up cell and the tests all read it here.
"""
REPO_URL = "https://github.com/diffusion-course/unit1-diffusion-models"
BRANCH = "main"
#: What ``pip install`` needs on Colab or Kaggle to get this package straight from git.
PIP_SPEC = f"course_utils @ git+{REPO_URL}@{BRANCH}"
#: The reading edition (``make book``), as GitHub Pages publishes it; the Chinese pages are under ``zh/``.
SITE_URL = "https://diffusion-course.github.io/unit1-diffusion-models/"


def _github_path() -> str:
    return REPO_URL.removeprefix("https://github.com/")


def colab_url(notebook: str) -> str:
    """Open-in-Colab address of a notebook path such as ``notebooks/01_....ipynb`` (README)."""
    return f"https://colab.research.google.com/github/{_github_path()}/blob/{BRANCH}/{notebook}"


def kaggle_url(notebook: str) -> str:
    """Open-in-Kaggle address of a notebook path (README)."""
    return f"https://kaggle.com/kernels/welcome?src={REPO_URL}/blob/{BRANCH}/{notebook}"
