"""What the commands share of their command lines: the parser, argument types, help."""

from __future__ import annotations

import argparse
import math
import shutil
import textwrap

from sklimg.classifier import ImageClassifier
from sklimg.io import DEFAULT_MAX_PIXELS

__all__ = [
    "Parser",
    "defaults",
    "fill",
    "fraction",
    "image_size",
    "learning_rate",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "probability",
]


class Parser(argparse.ArgumentParser):
    """argparse with errors on one line, pointing to ``--help`` instead of the usage."""

    def error(self, message: str):
        self.exit(2, f"sklimg: error: {message} (see '{self.prog} --help')\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def learning_rate(text: str) -> float | str:
    if text == "find":
        return text
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number or 'find', got {text!r}"
        ) from None


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(
            f"expected a probability above 0 and at most 1 (e.g. 0.25), got {text!r}"
        )
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a fraction strictly between 0 and 1 (e.g. 0.2), got {text!r}"
        )
    return value


def image_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a size in pixels, SIZE (a square, e.g. 64) or HEIGHTxWIDTH (e.g. "
            f"48x64), got {text!r}"
        )
    if size[0] * size[1] > DEFAULT_MAX_PIXELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is {size[0] * size[1]:,} pixels per image; at most "
            f"{DEFAULT_MAX_PIXELS:,} (the decoding limit) are allowed"
        )
    return size  # type: ignore[return-value]


def fill(text: str) -> str:
    """A paragraph wrapped for the terminal (descriptions are kept as written)."""
    return textwrap.fill(text, width=min(88, shutil.get_terminal_size().columns - 2))


def defaults() -> dict:
    """The classifier's defaults, so that --help states them without repeating them."""
    return ImageClassifier().get_params(deep=False)
