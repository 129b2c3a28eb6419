"""Writing files so that readers never see half of one: the one atomic write."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to, which then replaces ``path``.

    The temporary file is hidden and uniquely named, so parallel writers of the same
    folder (fits sharing a feature cache or a checkpoint folder) do not meet. When the
    block raises (a full disk, Ctrl-C), the temporary file is removed and ``path`` is
    left as it was: readers see the old file or the new one, never a part of one.

    Parameters
    ----------
    path : str or path-like
        The file to write, in an existing folder.

    Yields
    ------
    tmp : Path
        Where to write; it does not exist yet.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklimg._files import atomic_write
    >>> path = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_write(path) as tmp:
    ...     _ = tmp.write_text("done")
    >>> path.read_text(), [p.name for p in path.parent.iterdir()]
    ('done', ['notes.txt'])
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        # A folder of that name is not ours to remove, hence the suppressed error.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
