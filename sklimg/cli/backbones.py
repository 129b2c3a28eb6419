"""``sklimg backbones``: the registered backbones, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys

from sklimg.backbones import get_backbone, list_backbones
from sklimg.cli._commands import Command, CommandError, register
from sklimg.cli._output import table
from sklimg.cli._types import fill

__all__ = ["add_parser", "run"]


def add_parser(commands, parents: list) -> argparse.ArgumentParser:
    """The ``backbones`` command's options."""
    backbones = commands.add_parser(
        "backbones",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="list the available backbones",
        description=fill(
            "List the registered backbones with the input size of their pretrained weights, "
            "the size of their features, where pretrained weights come from, and a "
            "description."
        ),
        epilog=(
            "examples:\n  sklimg backbones\n  sklimg backbones --pattern 'resnet*' --format json"
        ),
    )
    backbones.add_argument(
        "--pattern",
        default="*",
        metavar="GLOB",
        help="only names matching this shell pattern, e.g. 'resnet*' (default: *, all)",
    )
    backbones.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output: an aligned table or a JSON list of objects (default: table)",
    )
    return backbones


def run(args: argparse.Namespace) -> int:
    names = list_backbones(args.pattern)
    if not names:
        raise CommandError(
            f"No backbone name matches {args.pattern!r}; the names are "
            f"{', '.join(list_backbones())}."
        )
    specs = [get_backbone(name) for name in names]
    if args.format == "json":
        records = [
            {
                "name": spec.name,
                "kind": spec.kind,
                "input_size": None if spec.input_size is None else list(spec.input_size),
                "feature_dim": spec.feature_dim,
                "pretrained_weights": _pretrained_source(spec),
                "description": spec.description,
            }
            for spec in specs
        ]
        print(json.dumps(records, indent=1))
        return 0
    rows = [
        [
            spec.name,
            spec.kind,
            "any" if spec.input_size is None else "x".join(map(str, spec.input_size)),
            "-" if spec.feature_dim is None else str(spec.feature_dim),
            _pretrained_source(spec) or "-",
            spec.description,
        ]
        for spec in specs
    ]
    headers = ["name", "kind", "input size", "features", "pretrained", "description"]
    sys.stdout.write(table(headers, rows))
    return 0


def _pretrained_source(spec) -> str | None:
    """Where ``pretrained=True`` gets the weights from, in words."""
    if spec.pretrained_weights is None:
        return None
    if spec.torchvision_name is not None and spec.pretrained_weights == "DEFAULT":
        return "ImageNet (torchvision)"
    if spec.torchvision_name is not None:
        return f"torchvision {spec.pretrained_weights}"
    return spec.pretrained_weights


register(Command("backbones", 5, add_parser, run))
