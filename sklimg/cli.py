"""The ``sklimg`` command: train, predict, evaluate and list backbones from a shell.

::

    sklimg train photos/ --backbone cnn_small --epochs 10 --validation-fraction 0.2
    sklimg predict model.sklimg new/ --top-k 3
    sklimg evaluate model.sklimg test/ --confusion-matrix cm.png --errors errors.png
    sklimg backbones --pattern "resnet*"

Also ``python -m sklimg``. Models are saved in the safe format of :func:`sklimg.save`
(JSON and tensors, never a pickle); ``--format joblib`` is there for models that format
cannot hold (classical backbones with a scikit-learn head), and reading such a file back
needs ``--allow-pickle``.

**Image sizes.** A network takes images of one size. ``sklimg train`` reads every
file's header first (nothing is decoded): images that share a size are used as they
are; images of several sizes need ``--image-size``, which resizes all of them
(stretching, bilinear with antialiasing). The size used is recorded in the model file
(``metadata={"image_size": [h, w]}``), and ``predict`` and ``evaluate`` resize every
image to it, so they take images of any size. Likewise, a folder mixing grayscale and
colour files trains on RGB, and later images are converted to the model's channels.

Errors print one line, ``sklimg: error: ...``, and exit with status 1 (2 for a wrong
command line); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
import sys
import textwrap
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["main"]

# File signatures, to name the format of a file that is not an sklimg model.
_ZIP = b"PK\x03\x04"
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
    b'\x04"M\x18': "lz4",
    b"ZF": "joblib (zlib)",
}
# Image files given where a model is expected (the arguments swapped).
_IMAGES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


class CommandError(ValueError):
    """A problem with what the command was asked to do, reported on one line."""


# ------------------------------------------------------------------ argument parsing
class _Parser(argparse.ArgumentParser):
    """argparse with errors on one line, pointing to ``--help`` instead of the usage."""

    def error(self, message: str):
        self.exit(2, f"sklimg: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _learning_rate(text: str) -> float | str:
    if text == "find":
        return text
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number or 'find', got {text!r}"
        ) from None


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(
            f"expected a probability above 0 and at most 1 (e.g. 0.25), got {text!r}"
        )
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a fraction strictly between 0 and 1 (e.g. 0.2), got {text!r}"
        )
    return value


def _image_size(text: str) -> tuple[int, int]:
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
    from sklimg.io import DEFAULT_MAX_PIXELS

    if size[0] * size[1] > DEFAULT_MAX_PIXELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is {size[0] * size[1]:,} pixels per image; at most "
            f"{DEFAULT_MAX_PIXELS:,} (the decoding limit) are allowed"
        )
    return size  # type: ignore[return-value]


def _fill(text: str) -> str:
    """A paragraph wrapped for the terminal (descriptions are kept as written)."""
    return textwrap.fill(text, width=min(88, shutil.get_terminal_size().columns - 2))


def _defaults() -> dict:
    """The classifier's defaults, so that --help states them without repeating them."""
    from sklimg.classifier import ImageClassifier

    return ImageClassifier().get_params(deep=False)


def build_parser() -> argparse.ArgumentParser:
    """The ``sklimg`` argument parser (exposed for documentation tools)."""
    import sklimg

    defaults = _defaults()
    parser = _Parser(
        prog="sklimg",
        description=_fill(
            "scikit-learn compatible image classification from the command line: train a "
            "classifier on a folder of images, predict, evaluate, list backbones."
        ),
        epilog=(
            "examples:\n"
            "  sklimg train data/train --backbone cnn_small --epochs 10 "
            "--validation-fraction 0.2\n"
            "  sklimg predict model.sklimg photo.jpg more_photos/ --top-k 3\n"
            "  sklimg evaluate model.sklimg data/test --confusion-matrix cm.png\n"
            "  sklimg backbones --pattern 'resnet*'\n\n"
            "Run 'sklimg COMMAND --help' for the options of each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sklimg {sklimg.__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        dest="debug_main",
        help="show the full traceback of errors instead of one line (default: off)",
    )
    common = _Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of errors instead of one line (default: off)",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    load_options = _Parser(add_help=False)
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
    _add_train(commands, [common], defaults)
    _add_predict(commands, [common, load_options])
    _add_evaluate(commands, [common, load_options])
    _add_backbones(commands, [common])
    return parser


def _add_train(commands, parents: list, defaults: dict) -> None:
    """The ``train`` command's options."""
    from sklimg._mix import MIX_POLICIES
    from sklimg.preprocessing._augment import AUGMENT_POLICIES

    train = commands.add_parser(
        "train",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="train a classifier on a folder with one subfolder per class",
        description=_fill(
            "Train an ImageClassifier on DATA_DIR, a folder with one subfolder per class "
            "(DATA_DIR/cat/1.jpg, DATA_DIR/dog/2.png, ...), and save it to --out. Prints a "
            "table of losses per epoch, and the accuracy on held-out images with "
            "--validation-fraction."
        ),
        epilog=(
            "examples:\n"
            "  sklimg train data/ --epochs 10 --validation-fraction 0.2 --out pets.sklimg\n"
            "  sklimg train photos/ --backbone resnet18 --pretrained --image-size 224 "
            "--epochs 5\n"
            "  sklimg train scans/ --backbone hog --format joblib --out scans.joblib\n\n"
        )
        + _fill(
            "Images of several sizes need --image-size. The size used is saved with the "
            "model, and 'sklimg predict' and 'sklimg evaluate' resize images to it."
        ),
    )
    train.add_argument(
        "data_dir", metavar="DATA_DIR", help="folder holding one subfolder of images per class"
    )
    train.add_argument(
        "--backbone",
        default=defaults["backbone"],
        metavar="NAME",
        help=(
            f"network (or classical features) turning images into features; see 'sklimg "
            f"backbones' (default: {defaults['backbone']})"
        ),
    )
    train.add_argument(
        "--pretrained",
        action="store_true",
        help="start from the backbone's pretrained (ImageNet) weights (default: from scratch)",
    )
    train.add_argument(
        "--weights",
        metavar="PATH",
        help=(
            "start from these weights: a .pth/.pt/.safetensors file or a torchvision "
            "weights name such as IMAGENET1K_V1; implies --pretrained (default: none)"
        ),
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=defaults["max_epochs"],
        metavar="N",
        help=f"passes over the training images (default: {defaults['max_epochs']})",
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int,
        default=defaults["batch_size"],
        metavar="N",
        help=f"images per batch, and per training step unless summed with "
        f"--gradient-accumulation-steps (default: {defaults['batch_size']})",
    )
    train.add_argument(
        "--gradient-accumulation-steps",
        type=_positive_int,
        default=1,
        metavar="K",
        help=(
            "sum the gradients of K batches before each step, to train with batches of "
            "K x --batch-size images where memory holds one batch (default: 1)"
        ),
    )
    train.add_argument(
        "--lr",
        type=_learning_rate,
        default=defaults["lr"],
        metavar="RATE",
        help=f"learning rate, or 'find' to run the learning-rate range test on the "
        f"training images first and use the rate it suggests (default: {defaults['lr']:g})",
    )
    train.add_argument(
        "--image-size",
        type=_image_size,
        metavar="SIZE",
        help=(
            "resize every image to SIZE pixels: an int for a square (64) or HEIGHTxWIDTH "
            "(48x64); needed when the images differ in size (default: the images' own "
            "size, which they must share)"
        ),
    )
    train.add_argument(
        "--augment",
        choices=list(AUGMENT_POLICIES),
        metavar="POLICY",
        help=(
            f"random augmentation of the training images, new every epoch: "
            f"{', '.join(AUGMENT_POLICIES)} (default: none)"
        ),
    )
    train.add_argument(
        "--erasing",
        type=_probability,
        metavar="P",
        help=(
            "erase a random rectangle of each training image with probability P (random "
            "erasing, timm's --reprob; 0.25 in its recipes), after --augment's changes "
            "(default: none)"
        ),
    )
    train.add_argument(
        "--mix",
        choices=[*MIX_POLICIES, "none"],
        default="none",
        metavar="METHOD",
        help=(
            "train on blends of two images scored against both labels, a regulariser "
            "for long runs: mixup (averaged images), cutmix (a box of one pasted into "
            "the other), mixup_cutmix (either, batch by batch) or none (default: none)"
        ),
    )
    train.add_argument(
        "--mix-alpha",
        type=_positive_float,
        metavar="ALPHA",
        help=(
            "with --mix: each batch's share of its own images is drawn from "
            "Beta(ALPHA, ALPHA); lower values mix less (default: 0.2 for mixup, 1.0 "
            "for cutmix)"
        ),
    )
    train.add_argument(
        "--ema-decay",
        type=_fraction,
        metavar="D",
        help=(
            "keep an exponential moving average of the weights (moving by 1 - D each "
            "step), which validation scores and the saved model holds, e.g. 0.99; it "
            "pays at a constant learning rate (default: none)"
        ),
    )
    train.add_argument(
        "--validation-fraction",
        type=_fraction,
        metavar="F",
        help=(
            "hold out this fraction of the images (stratified) to report validation loss "
            "and accuracy each epoch and the held-out accuracy at the end (default: none, "
            "train on all images)"
        ),
    )
    train.add_argument(
        "--device",
        default=defaults["device"],
        help=(
            f"where to train: auto (CUDA when available), cpu, cuda, cuda:1, mps "
            f"(default: {defaults['device']})"
        ),
    )
    train.add_argument(
        "--seed",
        type=_non_negative_int,
        metavar="N",
        help="random seed; the same seed on the CPU gives the same model (default: random)",
    )
    train.add_argument(
        "--workers",
        type=_non_negative_int,
        metavar="N",
        help=(
            "processes decoding images while the network trains; 0 decodes in the main "
            "process (default: half the CPUs, rounded down, at least 1 and at most 4)"
        ),
    )
    train.add_argument(
        "--out",
        default="model.sklimg",
        metavar="PATH",
        help="file to save the trained model to (default: model.sklimg)",
    )
    train.add_argument(
        "--format",
        choices=("sklimg", "joblib"),
        default="sklimg",
        help=(
            "model file format: sklimg, the safe format (JSON and tensors; networks only); "
            "or joblib, a pickle that holds any model, needed for classical backbones, and "
            "that only trusted users should load (default: sklimg)"
        ),
    )
    verbosity = train.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v",
        "--progress",
        action="store_true",
        help="also show a progress bar for each epoch's batches (default: off)",
    )
    verbosity.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="do not print the table of losses per epoch (default: print it)",
    )
    train.set_defaults(handler=_train)


def _add_predict(commands, parents: list) -> None:
    """The ``predict`` command's options."""
    predict = commands.add_parser(
        "predict",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="predict the label of image files",
        description=_fill(
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
        type=_positive_int,
        default=1,
        metavar="K",
        help="show the K most probable labels of each image, best first (default: 1)",
    )
    predict.set_defaults(handler=_predict)


def _add_evaluate(commands, parents: list) -> None:
    """The ``evaluate`` command's options."""
    evaluate = commands.add_parser(
        "evaluate",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="measure accuracy on a folder with one subfolder per class",
        description=_fill(
            "Predict every image of DATA_DIR (one subfolder per class, as for 'train') and "
            "print the accuracy and scikit-learn's classification report (precision, "
            "recall, F1 per class). Optionally save the confusion matrix and the most "
            "confidently misclassified images as pictures."
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
        type=_positive_int,
        default=16,
        metavar="N",
        help="most images in the --errors grid (default: 16)",
    )
    evaluate.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="output: readable text, or one JSON object (default: text)",
    )
    evaluate.set_defaults(handler=_evaluate)


def _add_backbones(commands, parents: list) -> None:
    """The ``backbones`` command's options."""
    backbones = commands.add_parser(
        "backbones",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="list the available backbones",
        description=_fill(
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
    backbones.set_defaults(handler=_backbones)


# ---------------------------------------------------------------------------- main
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
    debug = args.debug or args.debug_main
    try:
        with _warnings_on_one_line():
            return args.handler(args)
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
        print(f"sklimg: error: {_describe(exc)}", file=sys.stderr)
        return 1


def _describe(exc: BaseException) -> str:
    """An exception as one line; unexpected kinds keep their type and a hint."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (ValueError, TypeError, OSError, ImportError)):
        return message
    return f"{type(exc).__name__}: {message} (rerun with --debug for the traceback)"


def _warn(message: str) -> None:
    print(f"sklimg: warning: {' '.join(message.split())}", file=sys.stderr)


@contextmanager
def _warnings_on_one_line() -> Iterator[None]:
    """Show warnings as ``sklimg: warning: ...`` lines, without source file and code."""

    def show(message, category, filename, lineno, file=None, line=None):
        _warn(str(message))

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


# --------------------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    from sklimg.classifier import ImageClassifier
    from sklimg.datasets import load_image_folder
    from sklimg.preprocessing import Augment

    spec = _backbone_spec(args.backbone)
    classical = spec.kind == "classical"
    if classical and args.lr == "find":
        raise CommandError(
            f"--lr find tunes a network's learning rate; backbone {args.backbone!r} fits a "
            f"scikit-learn head on fixed features, which has none. Leave --lr out, or use "
            f"a network such as --backbone cnn_small."
        )
    mix = None if args.mix == "none" else args.mix
    if args.mix_alpha is not None and mix is None:
        raise CommandError(
            f"--mix-alpha {args.mix_alpha:g} sets how much --mix mixes, and --mix is "
            f"{args.mix}. Add --mix mixup (or cutmix, mixup_cutmix), or leave --mix-alpha "
            f"out."
        )
    network_options = {
        "--mix": mix is not None,
        "--ema-decay": args.ema_decay is not None,
        "--erasing": args.erasing is not None,
        "--gradient-accumulation-steps": args.gradient_accumulation_steps != 1,
    }
    for option, given in network_options.items():
        if classical and given:
            raise CommandError(
                f"{option} changes how a network trains; backbone {args.backbone!r} fits "
                f"a scikit-learn head on fixed features, once. Leave {option} out, or use "
                f"a network such as --backbone cnn_small."
            )
    if classical and args.format == "sklimg":
        raise CommandError(
            f"Backbone {args.backbone!r} gives classical features to a scikit-learn head, "
            f"which the safe sklimg format cannot store (it holds networks only). Use "
            f"--format joblib (a pickle: load it only if you trust it), or a network such "
            f"as --backbone cnn_small."
        )
    out = Path(args.out)
    if not out.parent.is_dir():
        raise CommandError(
            f"Cannot save the model to {str(out)!r}: folder {str(out.parent)!r} does not "
            f"exist. Create it first, or choose another --out."
        )
    if out.is_dir():
        raise CommandError(f"--out {str(out)!r} is a folder; give a file name, e.g. model.sklimg.")

    paths, labels = load_image_folder(args.data_dir)
    images, size, channels = _training_images(paths, args.data_dir, args.image_size)
    classes = sorted(set(labels.tolist()))
    from sklimg.classifier import _check_validation_split

    _check_validation_split(
        np.searchsorted(classes, labels),
        len(classes),
        args.validation_fraction,
        option="--validation-fraction ",
        without="leave --validation-fraction out",
    )
    if not args.quiet:
        shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        print(
            f"Training {args.backbone} on {len(paths)} images of {len(classes)} classes "
            f"({shown}) from {args.data_dir!r}: {size[0]}x{size[1]} "
            f"{'RGB' if channels == 3 else 'grayscale'}"
            f"{'' if classical else f', {args.epochs} epochs'}."
        )
    clf = ImageClassifier(
        args.backbone,
        pretrained=args.pretrained,
        weights=args.weights,
        augment=(
            args.augment
            if args.erasing is None
            else Augment(args.augment or "none", erasing=args.erasing)
        ),
        mix=mix,
        mix_alpha=args.mix_alpha,
        ema_decay=args.ema_decay,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        lr=_defaults()["lr"] if args.lr == "find" else args.lr,
        validation_fraction=None if classical else args.validation_fraction,
        device=args.device,
        random_state=args.seed,
        num_workers=args.workers,
        verbose=0 if args.quiet else 2 if args.progress else 1,
    )
    if args.lr == "find":
        _find_lr(clf, images, labels, args)
    if classical:
        held_out = _fit_classical(clf, images, labels, args.validation_fraction, args.seed)
    else:
        clf.fit(images, labels)
        held_out = _held_out_accuracy(clf, images, labels) if args.validation_fraction else None

    metadata = {"image_size": list(size)}
    if args.format == "sklimg":
        import sklimg

        sklimg.save(clf, out, metadata=metadata)
        how = "the safe sklimg format"
    else:
        import joblib

        # The same attribute sklimg.load sets, so both formats read back alike.
        clf.sklimg_metadata_ = metadata
        joblib.dump(clf, out)
        how = "joblib format; 'sklimg predict' needs --allow-pickle to read it"
    print(f"Saved the model to {str(out)!r} ({how}).")
    if held_out is not None:
        accuracy, n_held_out = held_out
        print(
            f"Held-out accuracy: {accuracy:.3f} on {n_held_out} images "
            f"(validation fraction {args.validation_fraction:g}, not used for training)."
        )
    return 0


def _find_lr(clf, images, labels: np.ndarray, args: argparse.Namespace) -> None:
    """Set ``clf``'s lr to the range test's suggestion, found on the images it will
    train on: the held-out ones stay out of it, by replaying the net's split with a
    seed fixed now."""
    from skorch.dataset import ValidSplit

    from sklimg.lr_finder import find_lr

    seed = args.seed if args.seed is not None else int(np.random.default_rng().integers(2**31))
    clf.set_params(random_state=seed)
    train = np.arange(len(labels))
    if args.validation_fraction:
        y_encoded = np.unique(labels, return_inverse=True)[1]
        placeholder = np.zeros((len(labels), 1), dtype=np.float32)
        split = ValidSplit(args.validation_fraction, stratified=True, random_state=seed)
        train = np.asarray(split(placeholder, y_encoded)[0].indices)
    result = find_lr(clf, images[train], labels[train])
    clf.set_params(lr=result.suggestion)
    if not args.quiet:
        print(
            f"Learning-rate range test on {len(train)} training images ({len(result.lrs)} "
            f"steps): lr {result.suggestion:.3g}."
        )


def _backbone_spec(name: str):
    """The backbone's spec; an unknown name gets close matches and the way to list them."""
    import difflib

    from sklimg.backbones import list_backbones, resolve_backbone
    from sklimg.exceptions import UnknownBackboneError

    try:
        return resolve_backbone(name)
    except UnknownBackboneError:
        unknown = next((p for p in name.split("+") if p.strip() not in list_backbones()), name)
        close = difflib.get_close_matches(unknown.strip(), list_backbones(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise CommandError(
            f"Unknown backbone {unknown!r}.{hint} Run 'sklimg backbones' to list them all."
        ) from None


def _training_images(paths: np.ndarray, root: str, image_size: tuple[int, int] | None):
    """The training images as LazyImages of one size and channel count.

    Reads each file's header (size, colour mode, EXIF orientation), nothing more.

    Returns
    -------
    images : LazyImages
    size : tuple of int
        ``(height, width)`` of every image after resizing.
    channels : int
        1 if every file is grayscale, else 3 (grayscale files are repeated to RGB).
    """
    from sklimg.preprocessing import LazyImages, Resize, ToRGB

    images = LazyImages(paths)
    images.check_files()  # every bad file reported at once, before anything else
    # (height, width, grayscale) each file decodes to, from the headers just read.
    headers = [(int(h), int(w), c == 1) for h, w, c in images._file_shapes]
    first_of_size: dict[tuple[int, int], str] = {}
    for path, (height, width, _) in zip(paths, headers, strict=True):
        first_of_size.setdefault((height, width), path)
    if image_size is None:
        if len(first_of_size) > 1:
            counts = Counter((height, width) for height, width, _ in headers)
            (common, _), (other, _) = counts.most_common(2)
            raise CommandError(
                f"The images in {root!r} differ in size ({len(counts)} sizes among "
                f"{len(paths)} images): {_relative(first_of_size[common], root)!r} is "
                f"{common[0]}x{common[1]} and {_relative(first_of_size[other], root)!r} is "
                f"{other[0]}x{other[1]} (height x width). Pass --image-size to resize them "
                f"all, e.g. --image-size {common[0]}x{common[1]}."
            )
        size = next(iter(first_of_size))
    else:
        size = image_size
        if set(first_of_size) != {size}:
            images = Resize(size).fit_transform(images)
    grays = {gray for _, _, gray in headers}
    if grays == {True, False}:
        images = ToRGB().fit_transform(images)
    channels = 1 if grays == {True} else 3
    return images, size, channels


def _relative(path: str, root: str) -> str:
    return os.path.relpath(path, root)


def _held_out_accuracy(clf, images, labels: np.ndarray) -> tuple[float, int]:
    """Accuracy of the final model on the images the net held out for validation.

    The per-epoch ``valid_acc`` is measured before training ends (before BatchNorm
    statistics are recomputed), so the final model is scored again here. The net's own
    split is replayed: skorch's stratified split depends only on the labels and its
    fixed seed, not on the images.
    """
    y_encoded = np.searchsorted(clf.classes_, labels)
    placeholder = np.zeros((len(labels), 1), dtype=np.float32)
    _, valid = clf.net_.get_split_datasets(placeholder, y_encoded)
    indices = np.asarray(valid.indices)
    return float(clf.score(images[indices], labels[indices])), len(indices)


def _fit_classical(clf, images, labels: np.ndarray, fraction: float | None, seed):
    """Fit a scikit-learn-head classifier, holding out ``fraction`` of the images."""
    if not fraction:
        clf.fit(images, labels)
        return None
    from sklearn.model_selection import train_test_split

    train, valid = train_test_split(
        np.arange(len(labels)), test_size=fraction, stratify=labels, random_state=seed
    )
    clf.fit(images[train], labels[train])
    return float(clf.score(images[valid], labels[valid])), len(valid)


# ------------------------------------------------------------------ loading models
def _load_model(path: str, *, allow_pickle: bool, device: str, command: str):
    """A fitted classifier from a model file, after checking what kind of file it is."""
    file = Path(path)
    if file.is_dir():
        raise CommandError(f"Model {path!r} is a folder; pass the model file saved by 'train'.")
    if not file.exists():
        raise CommandError(f"Model file {path!r} does not exist.")
    with open(file, "rb") as f:
        start = f.read(512)
    kind = _file_kind(start)
    if kind == "zip":
        import sklimg

        return sklimg.load(file, device=device)
    if kind == "image":
        usage = "IMAGE_OR_DIR..." if command == "predict" else "DATA_DIR"
        raise CommandError(
            f"{path!r} is an image, not a model file; the model comes first "
            f"(sklimg {command} MODEL {usage})."
        )
    if kind is None or kind == "text":
        what = "empty" if not start else "a text file" if kind == "text" else "of unknown format"
        raise CommandError(
            f"{path!r} is not an sklimg model file: it is {what}. Pass a model saved by "
            f"'sklimg train' or sklimg.save()."
        )
    if not allow_pickle:
        raise CommandError(
            f"{path!r} is a {kind} file (joblib.dump or pickle), not an sklimg model file; "
            f"loading it runs code stored in it. Pass --allow-pickle if you trust it, or "
            f"save the model with sklimg.save() ('sklimg train --format sklimg')."
        )
    import joblib

    try:
        model = joblib.load(file)
    except Exception as exc:  # a pickle can fail in any way
        raise CommandError(f"Could not load {path!r} with joblib ({kind}): {exc}") from exc
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise CommandError(
            f"{path!r} holds a {type(model).__name__}, not a fitted classifier with "
            f"predict_proba and classes_."
        )
    return model


def _set_tta(model, tta: str | None, path: str) -> None:
    """Predict with test-time augmentation: the ``tta`` of the model's classifier."""
    if tta is None:
        return
    from sklimg import ImageClassifier

    classifier = model[-1] if hasattr(model, "steps") else model
    if not isinstance(classifier, ImageClassifier):
        what = f"a {type(classifier).__name__}"
    elif classifier.backbone_spec_.kind == "classical":
        what = f"an ImageClassifier on classical features ({classifier.backbone_spec_.name})"
    else:
        what = None
    if what is not None:
        raise CommandError(
            f"--tta averages a network's predictions over views of each image; {path!r} "
            f"holds {what}. Drop --tta for this model."
        )
    classifier.set_params(tta=tta)


def _file_kind(start: bytes) -> str | None:
    """The format of a file from its first bytes: zip, image, pickle, compressed pickle,
    text, or None when unknown."""
    if start.startswith(_ZIP):
        return "zip"
    if start.startswith(_IMAGES) or (start[:4] == b"RIFF" and start[8:12] == b"WEBP"):
        return "image"
    if len(start) >= 2 and start[0] == 0x80 and 2 <= start[1] <= 5:
        return "pickle"
    for magic, name in _COMPRESSED.items():
        if start.startswith(magic):
            return f"{name}-compressed pickle"
    if len(start) >= 2 and start[0] == 0x78 and (start[0] * 256 + start[1]) % 31 == 0:
        return "zlib-compressed pickle"
    if start and b"\x00" not in start:
        try:
            start.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut by the 512-byte read is still text.
            if exc.start < len(start) - 3:
                return None
        return "text"
    return None


def _prepare(model, paths: Sequence[str]):
    """Files as the model expects them: resized to its training size, its channels."""
    from sklimg.preprocessing import Grayscale, LazyImages, Resize, ToRGB

    images = LazyImages(list(paths))
    images.check_files()
    shape = getattr(model, "input_shape_", None)
    if shape is None:  # e.g. a Pipeline that does its own preprocessing
        return images
    metadata = getattr(model, "sklimg_metadata_", None) or {}
    # Models saved outside the command have no metadata: their training size is the one.
    size = tuple(metadata.get("image_size", shape[:2]))
    images = Resize(size).fit_transform(images)
    return (ToRGB() if shape[-1] == 3 else Grayscale()).fit_transform(images)


# ------------------------------------------------------------------------- predict
def _predict(args: argparse.Namespace) -> int:
    paths = _expand(args.images)
    model = _load_model(
        args.model, allow_pickle=args.allow_pickle, device=args.device, command=args.command
    )
    _set_tta(model, args.tta, args.model)
    proba = np.asarray(model.predict_proba(_prepare(model, paths)))
    k = min(args.top_k, proba.shape[1])
    # Stable sort of the negated probabilities: ties keep the order of classes_.
    best = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    classes = np.asarray(model.classes_)
    results = [
        (
            path,
            [(_plain(classes[j]), float(proba[i, j])) for j in best[i]],
        )
        for i, path in enumerate(paths)
    ]
    sys.stdout.write(_FORMATTERS[args.format](results, k))
    return 0


def _expand(items: Sequence[str]) -> list[str]:
    """Image files from files and folders (searched recursively, sorted)."""
    from sklimg.datasets import IMAGE_EXTENSIONS

    files: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                os.path.join(folder, name)
                for folder, subdirs, names in _walk(path)
                for name in names
                if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
            )
            if not found:
                raise CommandError(
                    f"Folder {item!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)})."
                )
            files += found
        elif path.exists():
            files.append(item)
        else:
            raise CommandError(
                f"Image file {item!r} does not exist (relative paths start from {os.getcwd()!r})."
            )
    return files


def _walk(root: Path):
    for folder, subdirs, names in os.walk(root, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        yield folder, subdirs, names


def _plain(value):
    """A NumPy scalar label as a Python one, for JSON."""
    return value.item() if hasattr(value, "item") else value


def _format_table(results, k: int) -> str:
    if k == 1:
        headers = ["path", "label", "probability"]
        rows = [[path, str(top[0][0]), f"{top[0][1]:.3f}"] for path, top in results]
    else:
        headers = ["path", *(f"top {r}" for r in range(1, k + 1))]
        rows = [[path, *(f"{label} ({p:.3f})" for label, p in top)] for path, top in results]
    return _table(headers, rows)


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


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line("-" * w for w in widths), *map(line, rows)]) + "\n"


# ------------------------------------------------------------------------ evaluate
def _evaluate(args: argparse.Namespace) -> int:
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    from sklimg.datasets import load_image_folder

    for option in ("confusion_matrix", "errors"):
        target = getattr(args, option)
        if target is None:
            continue
        flag = f"--{option.replace('_', '-')}"
        if not Path(target).parent.is_dir():
            raise CommandError(
                f"Cannot save {flag} to {target!r}: folder "
                f"{str(Path(target).parent)!r} does not exist."
            )
        from matplotlib.figure import Figure  # only when a picture is asked for

        formats = Figure().canvas.get_supported_filetypes()
        if Path(target).suffix.lower().lstrip(".") not in formats:
            raise CommandError(
                f"Cannot save {flag} to {target!r}: pictures are saved as "
                f"{', '.join('.' + f for f in sorted(formats))}; e.g. {Path(target).stem}.png."
            )
    paths, labels = load_image_folder(args.data_dir)
    model = _load_model(
        args.model, allow_pickle=args.allow_pickle, device=args.device, command=args.command
    )
    _set_tta(model, args.tta, args.model)
    images = _prepare(model, paths)
    proba = np.asarray(model.predict_proba(images))
    classes = np.asarray(model.classes_)
    # Folder names are strings; a model trained on other labels is compared as strings.
    known = classes.astype(str)
    predicted = known[np.argmax(proba, axis=1)]
    unknown = sorted(set(labels.tolist()) - set(known.tolist()))
    if unknown:
        _warn(
            f"{args.data_dir!r} has classes the model was not trained on: {unknown}; their "
            f"images count as errors."
        )
    label_order = [*known.tolist(), *unknown]
    accuracy = accuracy_score(labels, predicted)
    n_correct = int((labels == predicted).sum())
    saved = {}
    if args.confusion_matrix:
        from sklimg.plotting import _confusion_matrix_display

        fig = _new_figure(size=max(4.0, 0.5 * len(label_order) + 2))
        _confusion_matrix_display(
            labels, predicted, known, normalize=args.normalize, ax=fig.add_subplot()
        )
        fig.savefig(args.confusion_matrix, dpi=100)
        saved["confusion_matrix"] = args.confusion_matrix
    if args.errors:
        from sklimg.plotting import _most_confused_grid

        fig = _new_figure()
        _most_confused_grid(images, labels, proba, known, n=args.n_errors, fig=fig)
        fig.savefig(args.errors, dpi=100)
        saved["errors"] = args.errors
    if args.format == "json":
        report = classification_report(
            labels, predicted, labels=label_order, output_dict=True, zero_division=0
        )
        matrix = confusion_matrix(labels, predicted, labels=label_order)
        summary = {
            "accuracy": accuracy,
            "n_images": len(labels),
            "n_correct": n_correct,
            "report": report,
            "confusion_matrix": {"labels": label_order, "counts": matrix.tolist()},
            "saved": saved,
        }
        print(json.dumps(summary, indent=1))
        return 0
    print(f"Accuracy: {accuracy:.3f} ({n_correct} of {len(labels)} images in {args.data_dir!r})")
    print()
    print(classification_report(labels, predicted, labels=label_order, zero_division=0))
    for option, path in saved.items():
        what = "Confusion matrix" if option == "confusion_matrix" else "Most confident errors"
        print(f"{what} saved to {path!r}.")
    return 0


def _new_figure(size: float | None = None):
    """A figure drawn by Agg, outside pyplot: no window, no global backend change."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=None if size is None else (size, size), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# ----------------------------------------------------------------------- backbones
def _backbones(args: argparse.Namespace) -> int:
    from sklimg.backbones import get_backbone, list_backbones

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
    sys.stdout.write(_table(headers, rows))
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
