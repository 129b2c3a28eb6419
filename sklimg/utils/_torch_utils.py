"""Device resolution and seeding for torch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state

from sklimg._statements import DeviceRefusal
from sklimg.exceptions import DeviceError

__all__ = ["resolve_device", "seed_from_random_state", "seeded"]


def resolve_device(device) -> str:
    """Turn the ``device`` parameter into a torch device string that works here.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"``, or a ``torch.device``.

    Returns
    -------
    device : str

    Raises
    ------
    DeviceError
        If the device name is unknown or the device is not available.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(
            f"Unknown device {device!r}; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceRefusal(
                "{device} but CUDA is not available on this machine ({device_name} auto "
                "takes a GPU only where there is one).",
                {"device": device},
                [{"device": "cpu"}, {"device": "auto"}],
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceRefusal(
                f"{{device}} but this machine has {torch.cuda.device_count()} CUDA "
                f"device(s), numbered from 0.",
                {"device": device},
                [{"device": "cuda"}],
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceRefusal(
            "{device} but MPS is not available.", {"device": device}, [{"device": "cpu"}]
        )
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(
            f"device={device!r} is not supported; expected 'auto', 'cpu', 'cuda', "
            f"'cuda:N' or 'mps'."
        )
    return str(dev)


def seed_from_random_state(random_state) -> int:
    """An int seed for torch from scikit-learn's ``random_state`` (None, int or RandomState)."""
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


# torch draws weight initialisation, dropout and shuffling from one generator per
# process, which no per-fit generator can replace (nn.Module constructors and dropout
# take none): seeded blocks of one process run one at a time, so a fit in a thread
# gives the model it gives alone. Re-entrant: a seeded block may hold another.
_SEEDED = threading.RLock()


@contextmanager
def seeded(seed: int, device: str) -> Iterator[None]:
    """Seed torch inside the block and restore the caller's random state afterwards.

    Seeded blocks of one process run one at a time (threads wait for each other), so
    that each one's random numbers are its own seed's.
    """
    dev = torch.device(device)
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with _SEEDED, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
