"""The code on the documentation pages runs and prints what the pages say.

Each page's ``>>>`` examples run as a doctest, in an empty temporary directory; setup a
reader need not see sits in reST comments, which doctest reads and Sphinx does not show.
"""

import doctest
from pathlib import Path

import pytest

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
