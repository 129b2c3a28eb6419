"""Sphinx configuration of the sklimg documentation.

Builds offline: no extension fetches anything (intersphinx is not used), and the
example gallery runs the scripts in ``examples/`` with the data shipped by
scikit-learn and scikit-image. ``make docs`` runs it with warnings as errors.
"""

import sys
from pathlib import Path

import sklimg

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "sphinxext"))

project = "sklimg"
author = "sklimg developers"
copyright = "sklimg developers"
release = sklimg.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx_gallery.gen_gallery",
    "sklimg_docs",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
# `single backticks` read as code, as in scikit-learn's docs.
default_role = "literal"

# -- API reference: autosummary writes one page per public name into generated/.
autosummary_generate = True
autosummary_ignore_module_all = False  # each module's __all__ is its public API
autosummary_imported_members = True  # names re-exported from private modules count
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types

# numpydoc: the class template lists the methods, so numpydoc does not add them again.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- Example gallery: examples/plot_*.py run at build time and their figures are kept.
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # demo.py is the `make demo` script: it saves files and reports timings, it is
    # not a gallery page.
    "ignore_pattern": r"demo\.py",
    "within_subsection_order": "sklimg_docs.ExampleOrder",  # reading order, not A-Z
    "doc_module": ("sklimg",),
    "backreferences_dir": "generated/backreferences",
    "show_memory": False,
    "download_all_examples": False,
    # Not written: a page of this machine's timings, in the docs source folder.
    "write_computation_times": False,
}

# -- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"sklimg {release}"
html_theme_options = {
    "github_url": "https://github.com/sklimg/sklimg",
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": [], "getting_started": []}
html_show_sourcelink = False
