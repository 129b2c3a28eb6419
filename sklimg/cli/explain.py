"""``sklimg explain MODEL IMAGE_OR_DIR... --out DIR``: a saliency overlay per image,
and how faithful each map is."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from sklimg._json import plain
from sklimg.cli._commands import Command, CommandError, register
from sklimg.cli._models import expand, load_model, model_flags, prepare_images, set_tta
from sklimg.cli._output import table
from sklimg.cli._types import fill
from sklimg.io import read_image
from sklimg.plotting import saliency_overlay
from sklimg.saliency import METHODS, deletion_scores, explain

__all__ = ["add_parser", "run"]


def add_parser(commands, parents: list) -> argparse.ArgumentParser:
    """The ``explain`` command's options."""
    parser = commands.add_parser(
        "explain",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="save a saliency map of each image: where the model looked",
        description=fill(
            "Explain the model's prediction for each image: save the image with its "
            "saliency map overlaid to --out (one PNG per image), and print the label, its "
            "probability and the deletion test of the map (how much the probability "
            "falls when the 10% most salient pixels are masked, against the same mask "
            "moved to random places; a map that does no better is marked)."
        ),
        epilog=(
            "examples:\n"
            "  sklimg explain model.sklimg photo.jpg\n"
            "  sklimg explain model.sklimg scans/ --out maps/ --method occlusion"
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="model file saved by 'sklimg train'")
    parser.add_argument(
        "images", metavar="IMAGE_OR_DIR", nargs="+", help="image files, or folders of them"
    )
    parser.add_argument(
        "--out",
        default="explanations",
        metavar="DIR",
        help="folder for the overlays, created if needed (default: explanations)",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="gradcam",
        help=(
            "gradcam and integrated_gradients need a network; occlusion explains every "
            "model (default: gradcam)"
        ),
    )
    parser.add_argument(
        "--target",
        metavar="LABEL",
        help="explain this class for every image (default: each image's predicted class)",
    )
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="output (default: table)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {args.out!r} is a file; give a folder for the overlays.")
    paths = expand(args.images)
    model = load_model(
        args.model, allow_pickle=args.allow_pickle, device=args.device, command=args.command
    )
    set_tta(model, args.tta, args.model)
    images = prepare_images(model, paths)
    proba = np.asarray(model.predict_proba(images))
    classes = np.asarray(model.classes_)
    # The predicted classes as the target: explain then predicts no second time.
    target = classes[proba.argmax(axis=1)] if args.target is None else args.target
    maps = explain(model, images, method=args.method, target=target)
    scores = deletion_scores(model, images, maps, target=target)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for i, path in enumerate(paths):
        saved = out / f"{i:04d}_{Path(path).stem}.png"
        Image.fromarray(saliency_overlay(read_image(path), maps[i])).save(saved)
        best = int(np.argmax(proba[i]))
        records.append(
            {
                "path": path,
                "label": plain(classes[best]),
                "probability": round(float(proba[i, best]), 6),
                "deletion": round(float(scores.salient[i]), 6),
                "random_deletion": round(float(scores.random[i]), 6),
                "faithful": bool(scores.faithful[i]),
                "overlay": str(saved),
            }
        )
    if args.format == "json":
        sys.stdout.write(json.dumps(records, indent=1) + "\n")
        return 0
    rows = [
        [
            r["path"],
            str(r["label"]),
            f"{r['probability']:.3f}",
            f"{r['deletion']:.3f}",
            f"{r['random_deletion']:.3f}",
            "yes" if r["faithful"] else "NO: no better than random",
        ]
        for r in records
    ]
    headers = ["path", "label", "probability", "deletion", "random", "faithful"]
    sys.stdout.write(table(headers, rows))
    print(f"Overlays saved to {str(out)!r}.")
    return 0


register(Command("explain", 3, add_parser, run, loads_models=True, flags=model_flags))
