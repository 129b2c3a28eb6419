"""``sklimg predict MODEL IMAGE_OR_DIR...``: the label and probability of each image."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable

import numpy as np

from sklimg._answers import answers
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
            "resized to the size the model was trained at. A model trained with "
            "--unknown answers its unknown label for images unlike its training images "
            "(with --format csv or json, with the score and the probability of the most "
            "probable class)."
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
    images = prepare_images(model, paths)
    result = answers(model, images)
    proba = result.proba
    k = min(args.top_k, proba.shape[1])
    # Stable sort of the negated probabilities: ties keep the order of classes_.
    best = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    classes = np.asarray(model.classes_)
    results = [
        (
            path,
            [(plain(classes[j]), float(proba[i, j])) for j in best[i]],
            None if result.unknown_score is None else float(result.unknown_score[i]),
        )
        for i, path in enumerate(paths)
    ]
    sys.stdout.write(_FORMATTERS[args.format](results, k, result.threshold, result.label))
    return 0


def _shown(top, score, threshold, label):
    """The label printed first: the unknown label above the threshold."""
    return label if score is not None and score > threshold else top[0][0]


def _format_table(results, k: int, threshold, label) -> str:
    if k == 1:
        headers = ["path", "label", "probability"]
        rows = [
            [path, str(_shown(top, score, threshold, label)), f"{top[0][1]:.3f}"]
            for path, top, score in results
        ]
    else:
        headers = ["path", *(f"top {r}" for r in range(1, k + 1))]
        rows = [[path, *(f"{name} ({p:.3f})" for name, p in top)] for path, top, _ in results]
        if threshold is not None:
            headers.append("answer")
            for row, (_, top, score) in zip(rows, results, strict=True):
                row.append(str(_shown(top, score, threshold, label)))
    return table(headers, rows)


def _format_csv(results, k: int, threshold, label) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extra = ["answer", "unknown_score"] if threshold is not None else []
    writer.writerow(
        ["path", "label", "probability"]
        + [f"{name}_{r}" for r in range(2, k + 1) for name in ("label", "probability")]
        + extra
    )
    for path, top, score in results:
        row = [path, *(v for name, p in top for v in (name, f"{p:.6f}"))]
        if threshold is not None:
            row += [_shown(top, score, threshold, label), f"{score:.6f}"]
        writer.writerow(row)
    return buffer.getvalue()


def _format_json(results, k: int, threshold, label) -> str:
    records = []
    for path, top, score in results:
        record = {
            "path": path,
            "label": _shown(top, score, threshold, label),
            "probability": round(top[0][1], 6),
            "top_k": [{"label": name, "probability": round(p, 6)} for name, p in top],
        }
        if threshold is not None:
            record["unknown"] = bool(score > threshold)
            record["unknown_score"] = round(score, 6)
        records.append(record)
    return json.dumps(records, indent=1) + "\n"


_FORMATTERS: dict[str, Callable] = {
    "table": _format_table,
    "csv": _format_csv,
    "json": _format_json,
}


register(Command("predict", 1, add_parser, run, loads_models=True, flags=model_flags))
