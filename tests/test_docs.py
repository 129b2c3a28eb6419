"""The code on the documentation pages runs and prints what the pages say.

Each page's ``>>>`` examples run as a doctest, in an empty temporary directory; setup a
reader need not see sits in reST comments, which doctest reads and Sphinx does not show.
"""

import doctest
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import FitFailedWarning

DOCS = Path(__file__).resolve().parents[1] / "docs"
# Pages written by hand: not the build output, the API pages and gallery generated
# from docstrings and examples (tested as such), or the templates.
GENERATED = {"_build", "_templates", "auto_examples", "generated"}
PAGES = sorted(
    page for page in DOCS.rglob("*.rst") if not GENERATED & set(page.relative_to(DOCS).parts)
)


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(DOCS).as_posix() for p in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(
        str(page),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_readme_quick_start_runs(tmp_path, monkeypatch):
    # The README is not a doctest page: run its quick-start block as a reader would.
    readme = (DOCS.parent / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitFailedWarning)  # a grid point that cannot fit
        exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["clf"].score(namespace["X_test"], namespace["y_test"]) > 0.97
    assert not np.isnan(namespace["search"].cv_results_["mean_test_score"]).any()
    assert (tmp_path / "digits.sklimg").is_file()
