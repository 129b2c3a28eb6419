"""What the commands print: errors and warnings on one line, tables, figures."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sklimg._statements import Refusal, SettingWarning
from sklimg.cli._commands import CommandError
from sklimg.cli._flags import Flags

__all__ = [
    "check_picture_path",
    "describe",
    "new_figure",
    "table",
    "warn",
    "warnings_on_one_line",
]


def describe(exc: BaseException, flags: Flags) -> str:
    """An exception as one line, refused settings worded in ``flags``; unexpected kinds
    keep their type and a hint."""
    text = exc.worded(flags) if isinstance(exc, Refusal) else str(exc)
    message = " ".join(text.split()) or type(exc).__name__
    if isinstance(exc, (ValueError, TypeError, OSError, ImportError)):
        return message
    return f"{type(exc).__name__}: {message} (rerun with --debug for the traceback)"


def warn(message: str) -> None:
    """Print ``sklimg: warning: ...`` on one line."""
    print(f"sklimg: warning: {' '.join(message.split())}", file=sys.stderr)


@contextmanager
def warnings_on_one_line(flags: Flags) -> Iterator[None]:
    """Show warnings as ``sklimg: warning: ...`` lines, without source file and code;
    warnings of settings worded in ``flags``."""

    def show(message, category, filename, lineno, file=None, line=None):
        warn(message.worded(flags) if isinstance(message, SettingWarning) else str(message))

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned columns under their headers."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line("-" * w for w in widths), *map(line, rows)]) + "\n"


def new_figure(size: float | None = None):
    """A figure drawn by Agg, outside pyplot: no window, no global backend change."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=None if size is None else (size, size), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def check_picture_path(target: str, flag: str) -> None:
    """Refuse, before any work, a picture that could not be saved at ``target``: a
    missing folder or a format matplotlib does not write."""
    if not Path(target).parent.is_dir():
        raise CommandError(
            f"Cannot save {flag} to {target!r}: folder {str(Path(target).parent)!r} does not exist."
        )
    from matplotlib.figure import Figure  # only when a picture is asked for

    formats = Figure().canvas.get_supported_filetypes()
    if Path(target).suffix.lower().lstrip(".") not in formats:
        raise CommandError(
            f"Cannot save {flag} to {target!r}: pictures are saved as "
            f"{', '.join('.' + f for f in sorted(formats))}; e.g. {Path(target).stem}.png."
        )
