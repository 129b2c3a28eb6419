"""``sklimg evaluate MODEL DATA_DIR``: accuracy, the calibration error, the
classification report, and pictures of the confusion matrix, the worst errors and
the reliability diagram."""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

from sklimg._trust import scaled_proba
from sklimg.cli._commands import Command, CommandError, register
from sklimg.cli._models import load_model, model_flags, prepare_images, set_tta
from sklimg.cli._output import check_picture_path, new_figure, warn
from sklimg.cli._types import fill, positive_int
from sklimg.datasets import load_image_folder
from sklimg.metrics import expected_calibration_error
from sklimg.plotting import (
    confusion_matrix_display,
    error_saliency,
    most_confused_grid,
    reliability_diagram,
)
from sklimg.saliency import METHODS

__all__ = ["add_parser", "run"]


def add_parser(commands, parents: list) -> argparse.ArgumentParser:
    """The ``evaluate`` command's options."""
    evaluate = commands.add_parser(
        "evaluate",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="measure accuracy on a folder with one subfolder per class",
        description=fill(
            "Predict every image of DATA_DIR (one subfolder per class, as for 'train') and "
            "print the accuracy, the expected calibration error of the probabilities "
            "(before and after the temperature of a model trained with --calibration) "
            "and scikit-learn's classification report (precision, recall, F1 per class). "
            "Optionally save the confusion matrix, the most confidently misclassified "
            "images and the reliability diagram as pictures."
        ),
        epilog=(
            "examples:\n"
            "  sklimg evaluate model.sklimg data/test\n"
            "  sklimg evaluate model.sklimg data/test --confusion-matrix cm.png "
            "--normalize true --errors errors.png"
        ),
    )
    evaluate.add_argument("model", metavar="MODEL", help="model file saved by 'sklimg train'")
    evaluate.add_argument(
        "data_dir", metavar="DATA_DIR", help="folder holding one subfolder of images per class"
    )
    evaluate.add_argument(
        "--confusion-matrix",
        metavar="PNG",
        help="save the confusion matrix as a picture there (default: not saved)",
    )
    evaluate.add_argument(
        "--normalize",
        choices=("true", "pred", "all"),
        help=(
            "confusion matrix of fractions: per true class, per predicted class or of all "
            "images (default: counts)"
        ),
    )
    evaluate.add_argument(
        "--errors",
        metavar="PNG",
        help=(
            "save a grid of the most confidently misclassified images there, with their "
            "true and predicted labels (default: not saved)"
        ),
    )
    evaluate.add_argument(
        "--n-errors",
        type=positive_int,
        default=16,
        metavar="N",
        help="most images in the --errors grid (default: 16)",
    )
    evaluate.add_argument(
        "--explain",
        choices=METHODS,
        metavar="METHOD",
        help=(
            "overlay each image of the --errors grid with its saliency map for the "
            f"predicted class: {', '.join(METHODS)} (default: no maps)"
        ),
    )
    evaluate.add_argument(
        "--calibration-plot",
        metavar="PNG",
        help=(
            "save the reliability diagram (accuracy against confidence, and the expected "
            "calibration error) there (default: not saved)"
        ),
    )
    evaluate.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="output: readable text, or one JSON object (default: text)",
    )
    return evaluate


def run(args: argparse.Namespace) -> int:
    if args.explain is not None and args.errors is None:
        raise CommandError("--explain draws maps on the --errors grid; add --errors PNG.")
    for option in ("confusion_matrix", "errors", "calibration_plot"):
        target = getattr(args, option)
        if target is None:
            continue
        check_picture_path(target, f"--{option.replace('_', '-')}")
    paths, labels = load_image_folder(args.data_dir)
    model = load_model(
        args.model, allow_pickle=args.allow_pickle, device=args.device, command=args.command
    )
    set_tta(model, args.tta, args.model)
    images = prepare_images(model, paths)
    proba = np.asarray(model.predict_proba(images))
    classes = np.asarray(model.classes_)
    # Folder names are strings; a model trained on other labels is compared as strings.
    known = classes.astype(str)
    predicted = known[np.argmax(proba, axis=1)]
    unknown = sorted(set(labels.tolist()) - set(known.tolist()))
    if unknown:
        warn(
            f"{args.data_dir!r} has classes the model was not trained on: {unknown}; their "
            f"images count as errors."
        )
    label_order = [*known.tolist(), *unknown]
    accuracy = accuracy_score(labels, predicted)
    n_correct = int((labels == predicted).sum())
    ece = expected_calibration_error(labels, proba, known)
    classifier = model[-1] if hasattr(model, "steps") else model
    temperature = getattr(classifier, "temperature_", None)
    ece_before = None
    if temperature is not None:
        # softmax(z / T) back to softmax(z): the same logits, without the temperature.
        with np.errstate(divide="ignore"):
            ece_before = expected_calibration_error(
                labels, scaled_proba(temperature * np.log(proba), 1.0), known
            )
    saved = {}
    if args.confusion_matrix:
        fig = new_figure(size=max(4.0, 0.5 * len(label_order) + 2))
        confusion_matrix_display(
            labels, predicted, known, normalize=args.normalize, ax=fig.add_subplot()
        )
        fig.savefig(args.confusion_matrix, dpi=100)
        saved["confusion_matrix"] = args.confusion_matrix
    if args.errors:
        fig = new_figure()
        saliency = None if args.explain is None else error_saliency(model, args.explain)
        most_confused_grid(
            images, labels, proba, known, n=args.n_errors, saliency=saliency, fig=fig
        )
        fig.savefig(args.errors, dpi=100)
        saved["errors"] = args.errors
    if args.calibration_plot:
        fig = new_figure(size=5.0)
        reliability_diagram(labels, proba, known, ax=fig.add_subplot())
        fig.savefig(args.calibration_plot, dpi=100)
        saved["calibration_plot"] = args.calibration_plot
    if args.format == "json":
        report = classification_report(
            labels, predicted, labels=label_order, output_dict=True, zero_division=0
        )
        matrix = confusion_matrix(labels, predicted, labels=label_order)
        summary = {
            "accuracy": accuracy,
            "n_images": len(labels),
            "n_correct": n_correct,
            "ece": ece,
            "ece_before_calibration": ece_before,
            "temperature": temperature,
            "report": report,
            "confusion_matrix": {"labels": label_order, "counts": matrix.tolist()},
            "saved": saved,
        }
        print(json.dumps(summary, indent=1))
        return 0
    print(f"Accuracy: {accuracy:.3f} ({n_correct} of {len(labels)} images in {args.data_dir!r})")
    calibration = (
        ""
        if ece_before is None
        else f" (before its temperature {temperature:.3g}: {ece_before:.3f})"
    )
    print(f"Expected calibration error (15 bins): {ece:.3f}{calibration}")
    print()
    print(classification_report(labels, predicted, labels=label_order, zero_division=0))
    for option, path in saved.items():
        what = {
            "confusion_matrix": "Confusion matrix",
            "errors": "Most confident errors",
            "calibration_plot": "Reliability diagram",
        }[option]
        print(f"{what} saved to {path!r}.")
    return 0


register(Command("evaluate", 2, add_parser, run, loads_models=True, flags=model_flags))
