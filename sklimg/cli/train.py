"""``sklimg train DATA_DIR``: train a classifier on a folder of class folders, save it."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.model_selection import train_test_split
from skorch.dataset import ValidSplit

from sklimg._files import atomic_write
from sklimg._fit import checks
from sklimg._fit.run import route_of
from sklimg._fit.trust import AUTO_METHODS
from sklimg._mix import MIX_POLICIES
from sklimg._trust import DETECTORS
from sklimg.backbones import resolve_backbone
from sklimg.classifier import ImageClassifier
from sklimg.cli._commands import Command, CommandError, register
from sklimg.cli._flags import Flags
from sklimg.cli._folders import folder_images
from sklimg.cli._types import defaults as classifier_defaults
from sklimg.cli._types import (
    fill,
    fraction,
    image_size,
    learning_rate,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from sklimg.datasets import load_image_folder
from sklimg.exceptions import UnknownBackboneError
from sklimg.lr_finder import find_lr
from sklimg.persistence import check_save_path, check_storable, save
from sklimg.preprocessing import Augment
from sklimg.preprocessing._augment import AUGMENT_POLICIES

__all__ = ["FLAGS", "add_parser", "backbone_spec", "flags", "run"]


def add_parser(commands, parents: list) -> argparse.ArgumentParser:
    """The ``train`` command's options."""
    defaults = classifier_defaults()
    train = commands.add_parser(
        "train",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="train a classifier on a folder with one subfolder per class",
        description=fill(
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
            "  sklimg train scans/ --backbone hog --out scans.sklimg\n\n"
        )
        + fill(
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
        type=positive_int,
        default=defaults["max_epochs"],
        metavar="N",
        help=f"passes over the training images (default: {defaults['max_epochs']})",
    )
    train.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults["batch_size"],
        metavar="N",
        help=f"images per batch, and per training step unless summed with "
        f"--gradient-accumulation-steps (default: {defaults['batch_size']})",
    )
    train.add_argument(
        "--gradient-accumulation-steps",
        type=positive_int,
        default=1,
        metavar="K",
        help=(
            "sum the gradients of K batches before each step, to train with batches of "
            "K x --batch-size images where memory holds one batch (default: 1)"
        ),
    )
    train.add_argument(
        "--lr",
        type=learning_rate,
        default=defaults["lr"],
        metavar="RATE",
        help=f"learning rate, or 'find' to run the learning-rate range test on the "
        f"training images first and use the rate it suggests (default: {defaults['lr']:g})",
    )
    train.add_argument(
        "--image-size",
        type=image_size,
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
        type=probability,
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
        type=positive_float,
        metavar="ALPHA",
        help=(
            "with --mix: each batch's share of its own images is drawn from "
            "Beta(ALPHA, ALPHA); lower values mix less (default: 0.2 for mixup, 1.0 "
            "for cutmix)"
        ),
    )
    train.add_argument(
        "--ema-decay",
        type=fraction,
        metavar="D",
        help=(
            "keep an exponential moving average of the weights (moving by 1 - D each "
            "step), which validation scores and the saved model holds, e.g. 0.99; it "
            "pays at a constant learning rate (default: none)"
        ),
    )
    train.add_argument(
        "--validation-fraction",
        type=fraction,
        metavar="F",
        help=(
            "hold out this fraction of the images (stratified) to report validation loss "
            "and accuracy each epoch and the held-out accuracy at the end (default: none, "
            "train on all images)"
        ),
    )
    train.add_argument(
        "--calibration",
        choices=("temperature", "none"),
        default="none",
        help=(
            "calibrate the probabilities on held-out images after training: temperature "
            "scaling, on the --validation-fraction images (0.1 without it) (default: none)"
        ),
    )
    train.add_argument(
        "--unknown",
        choices=("auto", *DETECTORS, "none"),
        default="none",
        metavar="METHOD",
        help=(
            f"answer an unknown label for images unlike the training images, scored by "
            f"auto ({AUTO_METHODS['neural']} for a network, {AUTO_METHODS['scikit-learn']} "
            f"for a classical backbone), {', '.join(DETECTORS)}; the threshold is set on "
            f"held-out images as for --calibration (default: none)"
        ),
    )
    train.add_argument(
        "--unknown-rate",
        type=fraction,
        default=defaults["unknown_rate"],
        metavar="F",
        help=(
            f"with --unknown: the fraction of held-out images of known classes that it "
            f"rejects (default: {defaults['unknown_rate']:g})"
        ),
    )
    train.add_argument(
        "--unknown-label",
        default="unknown",
        metavar="LABEL",
        help="with --unknown: the label it answers (default: unknown)",
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
        type=non_negative_int,
        metavar="N",
        help="random seed; the same seed on the CPU gives the same model (default: random)",
    )
    train.add_argument(
        "--workers",
        type=non_negative_int,
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
            "model file format: sklimg, the safe format (JSON, tensors and scikit-learn "
            "heads, loaded without pickle); or joblib, a pickle that only trusted users "
            "should load (default: sklimg)"
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
    return train


def run(args: argparse.Namespace) -> int:
    spec = backbone_spec(args.backbone)
    clf = _classifier(args, spec)
    route = route_of(clf.head, spec)
    # What fit, find_lr and save would refuse, refused before any image is read.
    checks.check_settings(clf)
    checks.device_of(clf)
    if route == "head":
        checks.check_head_route(clf, spec)
    if args.lr == "find":
        checks.check_needs_network(clf, spec, route, "find_lr")
    if args.format == "sklimg":
        check_storable(clf, spec)
    out = check_save_path(args.out, option="--out")

    paths, labels = load_image_folder(args.data_dir)
    images, size, channels = folder_images(paths, args.data_dir, args.image_size)
    classes = sorted(set(labels.tolist()))
    checks.check_validation_split(
        np.searchsorted(classes, labels), len(classes), args.validation_fraction
    )
    if not args.quiet:
        shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        print(
            f"Training {args.backbone} on {len(paths)} images of {len(classes)} classes "
            f"({shown}) from {args.data_dir!r}: {size[0]}x{size[1]} "
            f"{'RGB' if channels == 3 else 'grayscale'}"
            f"{'' if route == 'head' else f', {args.epochs} epochs'}."
        )
    if args.lr == "find":
        _find_lr(clf, images, labels, args)
    if route == "head":
        held_out = _fit_classical(clf, images, labels, args.validation_fraction, args.seed)
    else:
        clf.fit(images, labels)
        held_out = _held_out_accuracy(clf, images, labels) if args.validation_fraction else None

    metadata = {"image_size": list(size)}
    how = (
        "the safe sklimg format"
        if args.format == "sklimg"
        else "joblib format; 'sklimg predict' needs --allow-pickle to read it"
    )
    saved = _save_somewhere(clf, out, args.format, metadata)
    if saved != out:
        print(
            f"sklimg: error: could not save the model to {str(out)!r}; the trained model "
            f"is saved to {str(saved)!r} instead ({how}). Move it where it belongs.",
            file=sys.stderr,
        )
    else:
        print(f"Saved the model to {str(out)!r} ({how}).")
    if held_out is not None:
        accuracy, n_held_out = held_out
        print(
            f"Held-out accuracy: {accuracy:.3f} on {n_held_out} images "
            f"(validation fraction {args.validation_fraction:g}, not used for training)."
        )
    return 0 if saved == out else 1


def _save_somewhere(clf, out: Path, file_format: str, metadata: dict) -> Path:
    """Save to ``out``; when that fails after training (the disk filled up, the folder
    went away), save to the temporary folder instead: training is never thrown away
    because of its destination. Returns where the model is."""

    def write(path: Path) -> None:
        if file_format == "sklimg":
            save(clf, path, metadata=metadata)
        else:
            # The same attribute sklimg.load sets, so both formats read back alike.
            clf.sklimg_metadata_ = metadata
            with atomic_write(path) as tmp:
                joblib.dump(clf, tmp)

    try:
        write(out)
        return out
    except OSError as exc:
        print(f"sklimg: could not write {str(out)!r}: {exc}", file=sys.stderr)
        fd, fallback = tempfile.mkstemp(
            prefix=f"{out.stem}-", suffix=out.suffix or ".sklimg", dir=tempfile.gettempdir()
        )
        os.close(fd)
        write(Path(fallback))
        return Path(fallback)


def _classifier(args: argparse.Namespace, spec) -> ImageClassifier:
    """The classifier the flags describe (a classical backbone holds out its
    validation images itself: its head has no validation split)."""
    classical = spec.kind == "classical"
    return ImageClassifier(
        args.backbone,
        pretrained=args.pretrained,
        weights=args.weights,
        augment=(
            args.augment
            if args.erasing is None
            else Augment(args.augment or "none", erasing=args.erasing)
        ),
        mix=None if args.mix == "none" else args.mix,
        mix_alpha=args.mix_alpha,
        ema_decay=args.ema_decay,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        lr=classifier_defaults()["lr"] if args.lr == "find" else args.lr,
        validation_fraction=None if classical else args.validation_fraction,
        calibration=None if args.calibration == "none" else args.calibration,
        unknown=None if args.unknown == "none" else args.unknown,
        unknown_rate=args.unknown_rate,
        unknown_label=args.unknown_label,
        device=args.device,
        random_state=args.seed,
        num_workers=args.workers,
        verbose=0 if args.quiet else 2 if args.progress else 1,
    )


#: The classifier's parameters that train's options set, and the options.
FLAGS = {
    "backbone": "--backbone",
    "pretrained": "--pretrained",
    "weights": "--weights",
    "max_epochs": "--epochs",
    "batch_size": "--batch-size",
    "gradient_accumulation_steps": "--gradient-accumulation-steps",
    "lr": "--lr",
    "augment": "--augment",
    "mix": "--mix",
    "mix_alpha": "--mix-alpha",
    "ema_decay": "--ema-decay",
    "validation_fraction": "--validation-fraction",
    "calibration": "--calibration",
    "unknown": "--unknown",
    "unknown_rate": "--unknown-rate",
    "unknown_label": "--unknown-label",
    "device": "--device",
    "random_state": "--seed",
    "num_workers": "--workers",
    "format": "--format",
}


def flags(args: argparse.Namespace) -> Flags:
    """How train words settings: its options, as this command line gave them."""
    given, leave = {}, {}
    if args.erasing is not None:  # the Augment of --augment and --erasing
        erasing = f"--erasing {args.erasing:g}"
        given["augment"] = f"--augment {args.augment} {erasing}" if args.augment else erasing
        leave["augment"] = "--augment and --erasing" if args.augment else "--erasing"
    return Flags(
        FLAGS,
        given=given,
        leave=leave,
        fixed={"early_stopping": False},
        defaults={"gradient_accumulation_steps": 1},
    )


def _find_lr(clf, images, labels: np.ndarray, args: argparse.Namespace) -> None:
    """Set ``clf``'s lr to the range test's suggestion, found on the images it will
    train on: the held-out ones stay out of it, by replaying the net's split with a
    seed fixed now."""
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


def backbone_spec(name: str):
    """The backbone's spec; an unknown name gets the registry's close matches and the
    command that lists them."""
    try:
        return resolve_backbone(name)
    except UnknownBackboneError as exc:
        hint = f" Did you mean {', '.join(map(repr, exc.close))}?" if exc.close else ""
        raise CommandError(
            f"Unknown backbone {exc.name!r}.{hint} Run 'sklimg backbones' to list them all."
        ) from None


def _held_out_accuracy(clf, images, labels: np.ndarray) -> tuple[float, int]:
    """Accuracy of the final model on the images the net held out for validation.

    The per-epoch ``valid_acc`` is measured before training ends (before BatchNorm
    statistics are recomputed), so the final model is scored again here. The net's own
    split is replayed: skorch's stratified split depends only on the labels and its
    fixed seed, not on the images.
    """
    y_encoded = np.searchsorted(clf.classes_, labels)
    placeholder = np.zeros((len(labels), 1), dtype=np.float32)
    _, valid = clf.net_.train_split(placeholder, y_encoded)
    indices = np.asarray(valid.indices)
    return float(clf.score(images[indices], labels[indices])), len(indices)


def _fit_classical(clf, images, labels: np.ndarray, fraction: float | None, seed):
    """Fit a scikit-learn-head classifier, holding out ``fraction`` of the images."""
    if not fraction:
        clf.fit(images, labels)
        return None
    train, valid = train_test_split(
        np.arange(len(labels)), test_size=fraction, stratify=labels, random_state=seed
    )
    clf.fit(images[train], labels[train])
    return float(clf.score(images[valid], labels[valid])), len(valid)


register(Command("train", 0, add_parser, run, flags=flags))
