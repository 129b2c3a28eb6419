"""Reading and writing files safely: which paths may be opened at all, and the one
atomic write, so that readers never see half of a file and writers leave nothing
behind."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write", "special_file_kind", "unwritable_reason"]

# What os.stat's mode says a path is, for everything that is not a regular file.
_SPECIAL = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_file_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it is not a regular file, e.g. ``"a named pipe (FIFO)"``.

    Opening a named pipe blocks until something writes to it, and a character device
    such as ``/dev/zero`` never ends: both must be refused before ``open``. Links are
    followed, so a link to ``/dev/zero`` is a character device.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    kind : str or None
        ``"a folder"``, ``"a named pipe (FIFO)"``, ``"a socket"``, ``"a character
        device"`` or ``"a block device"``; ``None`` for a regular file and for a path
        that does not exist (which the caller reports in its own words).

    Examples
    --------
    >>> import os, tempfile
    >>> from sklimg._files import special_file_kind
    >>> folder = tempfile.mkdtemp()
    >>> os.mkfifo(os.path.join(folder, "pipe.png"))
    >>> special_file_kind(os.path.join(folder, "pipe.png")), special_file_kind(folder)
    ('a named pipe (FIFO)', 'a folder')
    >>> special_file_kind(os.path.join(folder, "missing.png")) is None
    True
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    for test, kind in _SPECIAL:
        if test(mode):
            return kind
    return None


def unwritable_reason(folder: str | os.PathLike) -> str | None:
    """Why no file can be created in ``folder``, or ``None`` when one can.

    A file is created and removed: permissions alone do not tell (a read-only file
    system, a full disk, root on a network share). A folder that does not exist yet
    is judged by its nearest existing parent, where it would be created.

    Parameters
    ----------
    folder : str or path-like

    Returns
    -------
    reason : str or None
        E.g. ``"Read-only file system"``, or ``"'a/b' is a file"``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklimg._files import unwritable_reason
    >>> folder = tempfile.mkdtemp()
    >>> unwritable_reason(os.path.join(folder, "new", "sub")) is None
    True
    >>> open(os.path.join(folder, "notes"), "w").close()
    >>> unwritable_reason(os.path.join(folder, "notes", "sub"))  # doctest: +ELLIPSIS
    "'.../notes' is a file"
    """
    path = Path(folder).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return f"{str(existing)!r} is a file"
    try:
        fd, probe = tempfile.mkstemp(prefix=".sklimg-write-test-", dir=existing)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to, which then replaces ``path``.

    - The temporary file is hidden and uniquely named, so parallel writers of the same
      folder (fits sharing a feature cache or a checkpoint folder, two processes
      saving one model) do not meet: the last rename wins, whole.
    - When the block raises (a full disk, Ctrl-C), the temporary file is removed and
      ``path`` is left as it was: readers see the old file or the new one, never a
      part of one.
    - The file and its folder are flushed to disk (``fsync``) before and after the
      rename, so a power loss cannot leave an empty or partial file under ``path``.
    - A process killed while writing (SIGKILL, a crash) cannot remove its temporary
      file; its name holds the host and process id, and the next write of ``path``
      removes those of processes that no longer run.

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
    _remove_abandoned(path)
    tmp = path.with_name(f"{_temp_prefix(path)}{_HOST}-{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        # A folder of that name is not ours to remove, hence the suppressed error.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


# Temporary names are .NAME.HOST-PID.HEX.tmp: a prefix up to HOST- is matched, so the
# process id is what follows it, up to the next dot (host names may hold dots too).
_HOST = socket.gethostname().replace(os.sep, "_")


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _remove_abandoned(path: Path) -> None:
    """Remove temporary files of ``path`` left by processes of this host that have
    ended: another host's, or a running process's, may still be written."""
    prefix = f"{_temp_prefix(path)}{_HOST}-"
    with contextlib.suppress(OSError):
        for tmp in path.parent.glob(f"{_glob_escape(prefix)}*.tmp"):
            pid = tmp.name[len(prefix) :].split(".", 1)[0]
            if pid.isdigit() and not _running(int(pid)):
                with contextlib.suppress(OSError):
                    tmp.unlink()


def _glob_escape(text: str) -> str:
    """``text`` with glob's special characters matched literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or a number no process has: leave it
    return True


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk, where the system allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # e.g. folders cannot be opened on Windows; nothing more can be done
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on folders
            os.fsync(fd)
    finally:
        os.close(fd)
