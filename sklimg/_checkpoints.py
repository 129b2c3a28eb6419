"""Checkpoints of a training run: what they hold, how they are written and read, and
which run may resume one.

A leaf: the training guard writes them after every epoch, and the neural route reads
one back to resume (``warm_start=True`` with a ``checkpoint_dir``). ``last.pt`` holds
the weights, the optimizer's state, the history, the weight average's state when there
is one, and a tag: a digest of the configuration, so that another configuration never
resumes it; ``best.pt`` holds the best weights so far. Both are written atomically and
read with weights-only unpickling.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
import torch

from sklimg._files import atomic_write
from sklimg._json import plain_history

__all__ = [
    "PARTIAL_FIT_TAG",
    "RESUMABLE_CHANGES",
    "checkpoint_to_resume",
    "config_digest",
    "load_checkpoint",
    "write_checkpoint",
]

#: What a partial_fit checkpoint's tag starts with: fit refuses to resume it.
PARTIAL_FIT_TAG = "partial_fit:"

#: Parameters that may change between a run and its resumption: they change where and
#: how long it runs, or what it reports, not the model it trains.
RESUMABLE_CHANGES = frozenset(
    {"max_epochs", "warm_start", "verbose", "checkpoint_dir", "num_workers", "device",
     "accelerator", "callbacks", "tta"}
)  # fmt: skip

_LAST, _BEST = "last.pt", "best.pt"
_REQUIRED = {"module", "optimizer", "history", "tag"}


def config_digest(params: dict, classes) -> str:
    """A digest of what shapes a trained model: its parameters (but
    :data:`RESUMABLE_CHANGES`) and its classes.

    Parameters
    ----------
    params : dict
        The classifier's ``get_params(deep=False)``.
    classes : array-like
        The class labels.

    Returns
    -------
    digest : str
    """
    kept = sorted((k, v) for k, v in params.items() if k not in RESUMABLE_CHANGES)
    return joblib.hash(repr((kept, np.asarray(classes).tolist())))


def write_checkpoint(
    folder: str | os.PathLike,
    *,
    module: dict,
    optimizer: dict,
    history,
    tag: str,
    average: dict | None = None,
    best: dict | None = None,
) -> None:
    """Write ``last.pt`` (and ``best.pt`` when ``best`` weights are given) atomically.

    Parameters
    ----------
    folder : str or path-like
        Created when missing.
    module, optimizer : dict
        State dicts of the network and of its optimizer.
    history : skorch.History
    tag : str
        :func:`config_digest` of the run, with :data:`PARTIAL_FIT_TAG` in front for
        partial_fit's.
    average : dict or None, default=None
        The weight average's state, when the run keeps one.
    best : dict or None, default=None
        The best weights so far, when they just improved.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "module": module,
        "optimizer": optimizer,
        "history": plain_history(history),
        "tag": tag,
    }
    if average is not None:
        checkpoint["average"] = average
    with atomic_write(folder / _LAST) as tmp:
        torch.save(checkpoint, tmp)
    if best is not None:
        with atomic_write(folder / _BEST) as tmp:
            torch.save({"module": best, "tag": tag}, tmp)


def load_checkpoint(folder: str | os.PathLike) -> dict | None:
    """The ``last.pt`` checkpoint in ``folder`` (weights-only unpickling), or None.

    Raises
    ------
    ValueError
        If the file is damaged or was not written by sklimg.
    """
    path = Path(folder) / _LAST
    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged, or not written by sklimg
        raise ValueError(
            f"{str(path)!r} is not a readable sklimg checkpoint ({type(exc).__name__}). "
            f"Delete it to start afresh, or use another checkpoint_dir."
        ) from None
    if not isinstance(checkpoint, dict) or not _REQUIRED <= set(checkpoint):
        raise ValueError(
            f"{str(path)!r} is not an sklimg checkpoint. Delete it to start afresh, or use "
            f"another checkpoint_dir."
        )
    return checkpoint


def checkpoint_to_resume(folder: str | os.PathLike, digest: str) -> dict | None:
    """The checkpoint in ``folder`` that a fit of configuration ``digest`` resumes, or
    None when there is none.

    Raises
    ------
    ValueError
        If the checkpoint was written by partial_fit, or by another configuration.
    """
    checkpoint = load_checkpoint(folder)
    if checkpoint is None:
        return None
    if checkpoint["tag"].startswith(PARTIAL_FIT_TAG):
        raise ValueError(
            f"The checkpoint in {str(folder)!r} was written by partial_fit, which trains "
            f"at a constant rate, call by call: fit cannot resume it with its own "
            f"schedule. Continue with partial_fit, or use another checkpoint_dir."
        )
    if checkpoint["tag"] != digest:
        changeable = ", ".join(sorted(RESUMABLE_CHANGES - {"warm_start", "checkpoint_dir"}))
        raise ValueError(
            f"The checkpoint in {str(folder)!r} was written by a classifier with other "
            f"parameters or classes; resume with the same parameters (only {changeable} "
            f"may change) and labels, or use another checkpoint_dir."
        )
    return checkpoint
