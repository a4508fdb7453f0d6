"""Show course_utils code inside a notebook, so the lesson reads the one real copy."""
from __future__ import annotations

import inspect


def show_source(obj) -> None:
    """Display the source of a function or class with syntax highlighting (plain text outside
    Jupyter). Used in "Diffusion Models from Scratch" to show ``BasicUNet`` and ``corrupt``."""
    code = inspect.getsource(obj)
    try:
        from IPython import get_ipython
        from IPython.display import Code, display

        if get_ipython() is not None:
            display(Code(code, language="python"))
            return
    except ImportError:
        pass
    print(code)
