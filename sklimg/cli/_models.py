"""Reading what the commands are given: model files (which kind of file, loaded
safely), and image files and folders, made what a model expects."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import joblib

from sklimg._files import special_file_kind
from sklimg._fit import checks
from sklimg.classifier import ImageClassifier
from sklimg.cli._commands import CommandError
from sklimg.cli._flags import Flags
from sklimg.datasets import IMAGE_EXTENSIONS
from sklimg.persistence import input_steps, load
from sklimg.preprocessing import LazyImages

__all__ = ["expand", "file_kind", "load_model", "model_flags", "prepare_images", "set_tta"]

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


def model_flags(args) -> Flags:
    """How the commands that read a model word the settings they check: their
    ``--tta`` and ``--device``."""
    return Flags({"tta": "--tta", "device": "--device"})


def load_model(path: str, *, allow_pickle: bool, device: str, command: str):
    """A fitted classifier from a model file, after checking what kind of file it is."""
    file = Path(path)
    kind = special_file_kind(file)
    if kind == "a folder":
        raise CommandError(f"Model {path!r} is a folder; pass the model file saved by 'train'.")
    if kind is not None:  # opening a pipe would wait for a writer forever
        raise CommandError(
            f"Model {path!r} is {kind}, not a file; pass the model file saved by 'train'."
        )
    if not file.exists():
        raise CommandError(f"Model file {path!r} does not exist.")
    with open(file, "rb") as f:
        start = f.read(512)
    kind = file_kind(start)
    if kind == "zip":
        return load(file, device=device)
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


def set_tta(model, tta: str | None, path: str) -> None:
    """Predict with test-time augmentation: the ``tta`` of the model's classifier,
    checked as the classifier checks it (a classical backbone has no network)."""
    if tta is None:
        return
    classifier = model[-1] if hasattr(model, "steps") else model
    if not isinstance(classifier, ImageClassifier):
        raise CommandError(
            f"--tta averages a network's predictions over views of each image; {path!r} "
            f"holds a {type(classifier).__name__}. Leave --tta out for this model."
        )
    classifier.set_params(tta=tta)
    checks.check_tta(classifier, classifier.backbone_spec_)


def file_kind(start: bytes) -> str | None:
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


def prepare_images(model, paths: Sequence[str]):
    """Files as the model expects them: resized to its training size, its channels."""
    images = LazyImages(list(paths))
    images.check_files()
    for step in input_steps(model):
        images = step.fit_transform(images)
    return images


def expand(items: Sequence[str]) -> list[str]:
    """Image files from files and folders (searched recursively, sorted)."""
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
