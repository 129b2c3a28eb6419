"""``main``: the parser of every registered command, and errors on one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# The command modules register themselves.
import sklimg.cli.audit
import sklimg.cli.backbones
import sklimg.cli.evaluate
import sklimg.cli.explain
import sklimg.cli.predict
import sklimg.cli.serve
import sklimg.cli.train  # noqa: F401
from sklimg._version import __version__
from sklimg.cli._commands import COMMANDS
from sklimg.cli._flags import Flags
from sklimg.cli._output import describe, warnings_on_one_line
from sklimg.cli._types import Parser, fill

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``sklimg`` argument parser (exposed for documentation tools)."""
    parser = Parser(
        prog="sklimg",
        description=fill(
            "scikit-learn compatible image classification from the command line: train a "
            "classifier on a folder of images, predict, evaluate, explain, audit the data, "
            "serve over HTTP, list "
            "backbones."
        ),
        epilog=(
            "examples:\n"
            "  sklimg train data/train --backbone cnn_small --epochs 10 "
            "--validation-fraction 0.2\n"
            "  sklimg predict model.sklimg photo.jpg more_photos/ --top-k 3\n"
            "  sklimg evaluate model.sklimg data/test --confusion-matrix cm.png\n"
            "  sklimg audit data/train --test-dir data/test --plot issues.png\n"
            "  sklimg serve model.sklimg --port 8000\n"
            "  sklimg backbones --pattern 'resnet*'\n\n"
            "Run 'sklimg COMMAND --help' for the options of each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sklimg {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        dest="debug_main",
        help="show the full traceback of errors instead of one line (default: off)",
    )
    common = Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of errors instead of one line (default: off)",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    load_options = Parser(add_help=False)
    load_options.add_argument(
        "--device",
        default="auto",
        help=(
            "where to run the network: auto (CUDA when available), cpu, cuda; pickled models "
            "run where they were saved, or on the CPU without CUDA (default: auto)"
        ),
    )
    load_options.add_argument(
        "--allow-pickle",
        action="store_true",
        help=(
            "allow MODEL to be a joblib/pickle file ('sklimg train --format joblib'); loading "
            "a pickle runs code stored in it, so use this only for files you trust "
            "(default: refuse pickles)"
        ),
    )
    load_options.add_argument(
        "--tta",
        choices=("flip", "flip_translate"),
        help=(
            "test-time augmentation: average the predictions for each image and its mirror "
            "(flip, 2x the time), also shifted by one pixel (flip_translate, 6x); "
            "for images that keep their class when mirrored, not digits or text (default: "
            "none)"
        ),
    )
    for command in sorted(COMMANDS.values(), key=lambda command: command.position):
        parents = [common, load_options] if command.loads_models else [common]
        command.add_parser(commands, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sklimg`` command.

    Parameters
    ----------
    argv : sequence of str or None, default=None
        The arguments after the program name; ``None``: ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 when the command failed, 2 for a wrong command line, 130 when
        interrupted.

    Examples
    --------
    >>> from sklimg.cli import main
    >>> main(["backbones", "--pattern", "resnet1*", "--format", "json"])  # doctest: +ELLIPSIS
    [
     {
      "name": "resnet18",
    ...
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: return, not exit
        return exc.code if isinstance(exc.code, int) else 1
    # The process's own command line (not a call from Python): a command may then
    # restart the process, as serve does to set the allocator.
    args.command_line = argv is None
    debug = args.debug or args.debug_main
    command = COMMANDS[args.command]
    flags = command.flags(args) if command.flags is not None else Flags({})
    try:
        with warnings_on_one_line(flags):
            return command.run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("sklimg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. '| head'): stop quietly, and point
        # stdout at devnull so that Python's flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if debug:
            raise
        print(f"sklimg: error: {describe(exc, flags)}", file=sys.stderr)
        return 1
