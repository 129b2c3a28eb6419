"""How much memory is free, and refusing work that will not fit before allocating it.

A small file can decode to a huge image (a 9500 x 9500 PNG of 88 kB is 1 GiB as
float32), and a network's activations grow with the pixels it is given: without a
check, such a fit grows until the system kills it. The estimates here are made from
the image headers and from one forward pass of the network on a small input, and
the work is refused only when the estimate is over what is free.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn

from sklimg.exceptions import InsufficientMemoryError

__all__ = ["activation_bytes", "available_bytes", "check_fits"]

_GIB = 2**30
# Probing a network on at most this many pixels a side keeps the probe cheap; its
# activations grow in proportion to the pixels (convolutions), so they scale up.
_PROBE_SIDE = 64


def available_bytes(device: str | torch.device = "cpu") -> int | None:
    """Free memory where ``device`` computes, in bytes; ``None`` when unknown.

    On the CPU: ``MemAvailable`` of ``/proc/meminfo``, lowered to what a container's
    cgroup limit leaves; on CUDA: the device's free memory.

    Examples
    --------
    >>> from sklimg._memory import available_bytes
    >>> free = available_bytes("cpu")
    >>> free is None or free > 0
    True
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    found = [value for value in (_meminfo_available(), _cgroup_available()) if value]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def _cgroup_available() -> int | None:
    """What a cgroup (v2, or v1) memory limit leaves free, if one is set."""
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        with contextlib.suppress(OSError, ValueError):
            text = Path(limit).read_text().strip()
            if text == "max" or int(text) >= 2**60:  # no limit
                return None
            return max(int(text) - int(Path(usage).read_text()), 0)
    return None


def activation_bytes(
    module: nn.Module, channels: int, size: tuple[int, int], *, kept: bool = True
) -> int | None:
    """Bytes of the outputs of ``module``'s layers for one image of ``size``: measured
    on a small input and scaled.

    With ``kept``, all of them, which training keeps for the backward pass; without, a
    forward pass without gradients, which holds about one layer's input and output
    at a time: twice the largest output.

    Parameters
    ----------
    module : nn.Module
        Takes ``(N, channels, H, W)``.
    channels : int
    size : tuple of int
        ``(H, W)`` of the images the module will be given.
    kept : bool, default=True
        Whether the outputs are kept for a backward pass.

    Returns
    -------
    bytes : int or None
        ``None`` when the module fails on the small input (one made for a fixed
        input size, or broken: the caller's own check of the module reports that).

    Examples
    --------
    >>> from torch import nn
    >>> from sklimg._memory import activation_bytes
    >>> conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    >>> activation_bytes(conv, 3, (100, 100))  # two layers of 8 x 100 x 100 float32
    640000
    >>> activation_bytes(conv, 3, (100, 100), kept=False)
    640000
    """
    height, width = size
    probe = (min(height, _PROBE_SIDE), min(width, _PROBE_SIDE))
    total = largest = 0

    def count(_module, _inputs, output) -> None:
        nonlocal total, largest
        for tensor in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
                largest = max(largest, tensor.numel() * tensor.element_size())

    leaves = [m for m in module.modules() if not any(True for _ in m.children())]
    hooks = [leaf.register_forward_hook(count) for leaf in leaves]
    was_training = module.training
    try:
        module.eval()  # BatchNorm statistics untouched by the probe
        with torch.no_grad():
            module(torch.zeros((1, channels, *probe)))
    except Exception:  # any error of a user's module; reported by the caller's check
        return None
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    measured = total if kept else 2 * largest
    return int(measured * (height * width) / (probe[0] * probe[1]))


def check_fits(needed: int, what: str, fixes: str, device: str | torch.device = "cpu") -> None:
    """Refuse work estimated at ``needed`` bytes when less is free.

    Parameters
    ----------
    needed : int
        The estimate, in bytes.
    what : str
        The work, e.g. ``"Training cnn_small on 10 images of 9500x9500 pixels"``.
    fixes : str
        What to change, in the caller's terms.
    device : str or torch.device, default="cpu"

    Raises
    ------
    InsufficientMemoryError
        Saying how much is needed and free, and the fixes.
    """
    free = available_bytes(device)
    if free is None or needed <= free:
        return
    where = "on the GPU" if torch.device(device).type == "cuda" else "in memory"
    raise InsufficientMemoryError(
        f"{what} needs about {needed / _GIB:.1f} GiB {where}, but only "
        f"{free / _GIB:.1f} GiB is free; it was refused before starting. {fixes}"
    )
