"""``sklimg audit DATA_DIR``: the images of a class folder whose label is suspect, the
duplicates, and with ``--test-dir`` the copies of test images among them; a CSV of
every image, a summary, and optionally a picture of the worst suspects."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from sklearn.linear_model import LogisticRegression

from sklimg.auditing import audit, summary_lines
from sklimg.classifier import ImageClassifier
from sklimg.cli._commands import Command, CommandError, register
from sklimg.cli._flags import Flags
from sklimg.cli._folders import folder_images
from sklimg.cli._output import check_picture_path, new_figure
from sklimg.cli._types import fill, image_size, non_negative_int, positive_int, probability
from sklimg.cli.train import backbone_spec
from sklimg.datasets import load_image_folder
from sklimg.plotting import plot_label_issues
from sklimg.preprocessing import LazyImages

__all__ = ["add_parser", "flags", "run"]

#: The default backbone: classical features, fast on the CPU and fine for any size of
#: at least 16 pixels.
DEFAULT_BACKBONE = "hog"


def add_parser(commands, parents: list) -> argparse.ArgumentParser:
    """The ``audit`` command's options."""
    parser = commands.add_parser(
        "audit",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="find suspect labels, duplicates and test-set leaks in a folder of classes",
        description=fill(
            "Audit DATA_DIR, a folder with one subfolder per class (as for 'train'): each "
            "image is predicted by a classifier cross-validated on the others (--cv "
            "folds), and cleanlab flags the images whose folder is probably the wrong "
            "class; identical and near-identical images are found, and with --test-dir, "
            "the images that also appear in the test set. Writes one row per image to "
            "--out (CSV) and prints a summary. A classical backbone (hog) or a pretrained "
            "one (--pretrained: frozen features, a logistic regression, each image's "
            "features computed once for all the folds) is quick; another backbone trains "
            "a network for --epochs in every fold."
        ),
        epilog=(
            "examples:\n"
            "  sklimg audit data/train --out audit.csv --plot issues.png\n"
            "  sklimg audit photos/ --backbone resnet18 --pretrained --image-size 224 "
            "--test-dir photos_test/\n"
        ),
    )
    parser.add_argument(
        "data_dir", metavar="DATA_DIR", help="folder holding one subfolder of images per class"
    )
    parser.add_argument(
        "--backbone",
        default=DEFAULT_BACKBONE,
        metavar="NAME",
        help=f"features of the classifier; see 'sklimg backbones' (default: {DEFAULT_BACKBONE})",
    )
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="the backbone's pretrained weights, frozen, with a logistic regression "
        "(default: a network trained from scratch, for a deep backbone)",
    )
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="these pretrained weights (a .pth/.pt/.safetensors file or a torchvision "
        "weights name); implies --pretrained (default: none)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=5,
        metavar="N",
        help="epochs of each fold's network, for a deep backbone without --pretrained (default: 5)",
    )
    parser.add_argument(
        "--image-size",
        type=image_size,
        metavar="SIZE",
        help="resize every image to SIZE pixels (64 or HEIGHTxWIDTH); needed when the "
        "images differ in size (default: their own size)",
    )
    parser.add_argument(
        "--cv",
        type=positive_int,
        default=5,
        metavar="K",
        help="cross-validation folds; every class needs at least K images (default: 5)",
    )
    parser.add_argument(
        "--test-dir",
        metavar="DIR",
        help="a test folder (of class folders): images of DATA_DIR that are also there are "
        "marked crosses_split (default: none)",
    )
    parser.add_argument(
        "--near-duplicate-threshold",
        type=probability,
        default=0.995,
        metavar="T",
        help="cosine similarity of the images' thumbnails from which two are near "
        "duplicates; 1 finds identical images only (default: 0.995)",
    )
    parser.add_argument(
        "--out",
        default="audit.csv",
        metavar="CSV",
        help="file to write one row per image to (default: audit.csv)",
    )
    parser.add_argument(
        "--plot",
        metavar="PNG",
        help="save a picture of the worst suspects and duplicate pairs there (default: not saved)",
    )
    parser.add_argument(
        "--n-plot",
        type=positive_int,
        default=16,
        metavar="N",
        help="most suspects in the --plot picture (default: 16)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="where the network runs: auto (CUDA when available), cpu, cuda (default: auto)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="folds fitted in parallel (default: 1)",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="seed of the folds and the networks (default: 0)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar over the folds (default: a bar on stderr)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    spec = backbone_spec(args.backbone)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise CommandError(
            f"Cannot write --out {args.out!r}: folder {str(out.parent)!r} does not exist."
        )
    if args.plot:
        check_picture_path(args.plot, "--plot")
    if args.cv < 2:
        raise CommandError(f"--cv must be at least 2 folds; got --cv {args.cv}.")
    paths, labels = load_image_folder(args.data_dir)
    label, count = min(Counter(labels.tolist()).items(), key=lambda item: (item[1], item[0]))
    if len(set(labels.tolist())) < 2:
        raise CommandError(
            f"{args.data_dir!r} holds a single class ({label!r}); an audit compares "
            f"classes: give DATA_DIR one subfolder per class, at least two."
        )
    if count < args.cv:
        raise CommandError(
            f"Class {label!r} of {args.data_dir!r} has {count} images, fewer than --cv "
            f"{args.cv} folds: every fold must train on every class. Pass --cv {count} "
            f"or fewer (at least 2), or add images to that class."
        )
    images, _, _ = folder_images(paths, args.data_dir, args.image_size)
    test = None
    if args.test_dir is not None:
        if not Path(args.test_dir).is_dir():
            raise CommandError(f"--test-dir {args.test_dir!r} is not a folder.")
        test = LazyImages(load_image_folder(args.test_dir)[0])
    report = audit(
        _model(args, spec),
        images,
        labels,
        cv=args.cv,
        X_test=test,
        near_duplicate_threshold=args.near_duplicate_threshold,
        n_jobs=args.jobs,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
    )
    report.to_csv(out, index_label="index")
    print(f"Audit of {args.data_dir!r} with {args.backbone}:")
    for line in summary_lines(report):
        print(f"  {line}")
    print(f"One row per image written to {str(out)!r}.")
    if args.plot:
        fig = new_figure()
        plot_label_issues(report, images, n=args.n_plot, fig=fig)
        fig.savefig(args.plot, dpi=100)
        print(f"Worst suspects saved to {args.plot!r}.")
    return 0


def _model(args: argparse.Namespace, spec) -> ImageClassifier:
    """The classifier the flags describe: a classical backbone's default head; frozen
    pretrained features and a logistic regression; or a network trained per fold."""
    common = dict(device=args.device, random_state=args.seed, verbose=0)
    if spec.kind == "classical":
        return ImageClassifier(args.backbone, **common)
    if args.pretrained or args.weights:
        return ImageClassifier(
            args.backbone,
            pretrained=True,
            weights=args.weights,
            head=LogisticRegression(max_iter=1000),
            **common,
        )
    return ImageClassifier(args.backbone, max_epochs=args.epochs, **common)


#: The classifier's parameters that audit's options set, and the options.
FLAGS = {
    "backbone": "--backbone",
    "pretrained": "--pretrained",
    "weights": "--weights",
    "max_epochs": "--epochs",
    "device": "--device",
    "random_state": "--seed",
}


def flags(args: argparse.Namespace) -> Flags:
    """How audit words settings: its options."""
    return Flags(FLAGS)


register(Command("audit", 4, add_parser, run, flags=flags))
