"""The registry of commands: each command module registers its parser and its handler."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from sklimg.cli._flags import Flags

__all__ = ["COMMANDS", "Command", "CommandError", "register"]


class CommandError(ValueError):
    """A problem with what the command was asked to do, reported on one line."""


@dataclass(frozen=True)
class Command:
    """One ``sklimg`` command.

    Parameters
    ----------
    name : str
    position : int
        Where ``sklimg --help`` lists it.
    add_parser : callable
        ``add_parser(subparsers, parents) -> ArgumentParser``: the command's options.
    run : callable
        ``run(args) -> int``: the exit status.
    loads_models : bool, default=False
        Whether the command reads a model file (it then gets ``--device``,
        ``--allow-pickle`` and ``--tta``).
    flags : callable or None, default=None
        ``flags(args) -> Flags``: how the command words settings refused or warned
        about (as the command line gave them); ``None``: a command without settings.
    """

    name: str
    position: int
    add_parser: Callable[..., argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]
    loads_models: bool = False
    flags: Callable[[argparse.Namespace], Flags] | None = None


#: The commands, by name.
COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    """Add ``command`` to :data:`COMMANDS` (a name is registered once)."""
    if command.name in COMMANDS:
        raise ValueError(f"A command named {command.name!r} is already registered.")
    COMMANDS[command.name] = command
    return command
