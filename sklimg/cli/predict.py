"""``sklimg predict MODEL IMAGE_OR_DIR...``: the label and probability of each image."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable

import numpy as np

from sklimg._json import plain
from sklimg.cli._commands import Command, register
from sklimg.cli._models import expand, load_model, model_flags, prepare_images, set_tta
from sklimg.cli._output import table
from sklimg.cli._types import fill, positive_int

__all__ = ["add_parser", "run"]


def add_parser(commands, parents: list) -> argparse.ArgumentParser:
    """The ``predict`` command's options."""
    predict = commands.add_parser(
        "predict",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="predict the label of image files",
        description=fill(
            "Print the predicted label and its probability for each image. Folders are "
            "searched recursively for image files, taken in sorted order. Images are "
            "resized to the size the model was trained at."
        ),
        epilog=(
            "examples:\n"
            "  sklimg predict model.sklimg cat.jpg dog.png\n"
            "  sklimg predict model.sklimg new_photos/ --top-k 3\n"
            "  sklimg predict model.sklimg new_photos/ --format csv > predictions.csv"
        ),
    )
    predict.add_argument("model", metavar="MODEL", help="model file saved by 'sklimg train'")
    predict.add_argument(
        "images",
        metavar="IMAGE_OR_DIR",
        nargs="+",
        help="image files, or folders searched recursively for images",
    )
    predict.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help=(
            "output: an aligned table, CSV (path,label,probability[,label_2,probability_2"
            "...]) or a JSON list of objects (default: table)"
        ),
    )
    predict.add_argument(
        "--top-k",
        type=positive_int,
        default=1,
        metavar="K",
        help="show the K most probable labels of each image, best first (default: 1)",
    )
    return predict


def run(args: argparse.Namespace) -> int:
    paths = expand(args.images)
    model = load_model(
        args.model, allow_pickle=args.allow_pickle, device=args.device, command=args.command
    )
    set_tta(model, args.tta, args.model)
    proba = np.asarray(model.predict_proba(prepare_images(model, paths)))
    k = min(args.top_k, proba.shape[1])
    # Stable sort of the negated probabilities: ties keep the order of classes_.
    best = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    classes = np.asarray(model.classes_)
    results = [
        (
            path,
            [(plain(classes[j]), float(proba[i, j])) for j in best[i]],
        )
        for i, path in enumerate(paths)
    ]
    sys.stdout.write(_FORMATTERS[args.format](results, k))
    return 0


def _format_table(results, k: int) -> str:
    if k == 1:
        headers = ["path", "label", "probability"]
        rows = [[path, str(top[0][0]), f"{top[0][1]:.3f}"] for path, top in results]
    else:
        headers = ["path", *(f"top {r}" for r in range(1, k + 1))]
        rows = [[path, *(f"{label} ({p:.3f})" for label, p in top)] for path, top in results]
    return table(headers, rows)


def _format_csv(results, k: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["path", "label", "probability"]
        + [f"{name}_{r}" for r in range(2, k + 1) for name in ("label", "probability")]
    )
    for path, top in results:
        writer.writerow([path, *(v for label, p in top for v in (label, f"{p:.6f}"))])
    return buffer.getvalue()


def _format_json(results, k: int) -> str:
    records = [
        {
            "path": path,
            "label": top[0][0],
            "probability": round(top[0][1], 6),
            "top_k": [{"label": label, "probability": round(p, 6)} for label, p in top],
        }
        for path, top in results
    ]
    return json.dumps(records, indent=1) + "\n"


_FORMATTERS: dict[str, Callable] = {
    "table": _format_table,
    "csv": _format_csv,
    "json": _format_json,
}


register(Command("predict", 1, add_parser, run, loads_models=True, flags=model_flags))
