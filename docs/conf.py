"""Sphinx configuration of the Switchover Lab docs site (``make docs``)."""
import os
import pathlib
import shutil
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
# document this checkout's toolkit, here and in the kernels that run the notebooks
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")]))

import toolkit  # noqa: E402

project = "Switchover Lab"
author = "The Switchover Lab contributors"
copyright = "2026, " + author
release = version = toolkit.__version__

extensions = [
    "myst_nb",                  # Markdown pages and the notebooks, executed
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",                 # the docstrings are numpydoc-style
    "sphinx.ext.mathjax",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]
# autosummary writes its stubs with the first suffix: reST
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# the notebooks live in notebooks/; they are copied here (docs/notebooks/, not in git)
# only when changed, so that an unchanged notebook is neither re-read nor re-run
NOTEBOOKS = DOCS / "notebooks"
NOTEBOOKS.mkdir(exist_ok=True)
for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
    target = NOTEBOOKS / source.name
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
for stale in NOTEBOOKS.glob("*.ipynb"):
    if not (ROOT / "notebooks" / stale.name).exists():
        stale.unlink()

# Executed at build time. "cache": a notebook runs again only when its code changed
# (jupyter-cache in docs/_build/.jupyter_cache); the first build runs all of them.
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = True      # a failing notebook fails the build
nb_execution_show_tb = True
nb_merge_streams = True
nb_render_markdown_format = "gfm"      # Markdown outputs may hold tables

autosummary_generate = True
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"                  # numpydoc's Parameters say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"Switchover Lab {release}"
html_static_path = []
