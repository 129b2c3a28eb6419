"""The learning-rate range test: choose ``lr`` from a short run, before training.

The network trains for ``num_iter`` batches while the learning rate grows
exponentially from ``start_lr`` to ``end_lr``, and the (smoothed) training loss is
recorded at each rate (Smith, "Cyclical Learning Rates for Training Neural Networks",
2017). A good rate lies where the loss falls fastest, well before it blows up. This is
fastai's ``Learner.lr_find`` and torch-lr-finder's ``LRFinder.range_test`` for an
:class:`~sklimg.ImageClassifier`, its data and its settings, without fitting it.
"""

from __future__ import annotations

import dataclasses
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from sklimg._fit import checks, neural
from sklimg._fit.run import prepare, route_of
from sklimg._warnings import warn
from sklimg.backbones import resolve_backbone
from sklimg.classifier import ImageClassifier
from sklimg.utils._torch_utils import seeded

__all__ = ["LRFinderResult", "find_lr"]


@dataclasses.dataclass(frozen=True)
class LRFinderResult:
    """What :func:`find_lr` measured, and the rates it suggests (as fastai's
    ``SuggestedLRs``).

    Attributes
    ----------
    lrs : ndarray of shape (n_steps,)
        The learning rate of each step.
    losses : ndarray of shape (n_steps,)
        The training loss of each step's batch (computed before that step's update),
        smoothed by an exponential moving average (bias-corrected), as fastai plots it.
    suggestion : float
        The rate to use: ``minimum``. Of the three rules it trained best here: 4
        epochs of ``"test_cnn"`` on 600 digits scored 0.86 at ``minimum``, 0.71 at
        ``steep`` and 0.55 at ``valley`` (see ``benchmarks/lr_finder.py``).
    minimum : float
        The rate of the lowest loss, divided by 10 (Smith's rule; fastai's
        ``minimum``): the loss is still falling there, well before the rate at which
        training becomes unstable.
    valley : float
        fastai's default rule: about halfway down the longest stretch over which the
        loss keeps falling. More cautious.
    steep : float
        The rate where the loss falls fastest per step of ``log(lr)`` (fastai's
        ``steep``).

    Notes
    -----
    As in fastai, the three rules read the curve without its first tenth of
    ``num_iter`` steps and its last 5 steps.
    """

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float
    minimum: float
    valley: float
    steep: float


def find_lr(
    estimator,
    X,
    y,
    *,
    sample_weight=None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    smooth_f: float = 0.05,
    diverge_th: float = 5.0,
) -> LRFinderResult:
    """Run the learning-rate range test for a classifier on its training data.

    The classifier itself is not changed or fitted: a clone trains, with its own
    network, optimizer, batch size, gradient accumulation, augmentation, mixing
    (``mix``), ``finetune`` and ``random_state``; the losses are those of the weights
    as they train (``ema_decay`` plays no part).
    Stops early once the smoothed loss passes ``diverge_th`` times its lowest value.

    Parameters
    ----------
    estimator : ImageClassifier or Pipeline ending in one
        With a neural head (a deep backbone and ``head=None``). For a pipeline, the
        steps before the classifier are fitted on ``X`` first and transform it.
    X : array-like of shape (n_samples, H, W[, C]), list of arrays, file paths, or \
            LazyImages
        Training images, as for :meth:`ImageClassifier.fit`.
    y : array-like of shape (n_samples,)
        Their labels.
    sample_weight : array-like of shape (n_samples,) or None, default=None
        Weights per image, as for :meth:`ImageClassifier.fit`.
    start_lr, end_lr : float, default=1e-7, 10.0
        The learning rates of the first and last step (the rate grows by the same
        factor at each step). Parameter groups with their own scale (the backbone's,
        ``backbone_lr_scale``) keep it.
    num_iter : int, default=100
        Training steps, cycling over the data as often as needed: batches, or groups
        of ``gradient_accumulation_steps`` batches (their mean loss).
    smooth_f : float, default=0.05
        Weight of each new loss in the moving average (1 - fastai's ``beta``).
    diverge_th : float, default=5.0
        Stop when the smoothed loss exceeds this many times its lowest value.

    Returns
    -------
    result : LRFinderResult
        The rates, the smoothed losses and the suggested rates (``suggestion``, and
        fastai's ``minimum``, ``valley`` and ``steep``); draw them with
        :func:`sklimg.plotting.plot_lr_finder`.

    Raises
    ------
    ValueError
        For an estimator that has no neural head, settings out of range, or a loss
        that diverged too soon to read a rate off the curve.
    ImageInputError
        For unusable images or labels.

    Warns
    -----
    UserWarning
        When the loss did not fall over the rates tested (``start_lr`` too high?), or
        was still falling at ``end_lr`` (pass a higher one).

    Examples
    --------
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg.lr_finder import find_lr
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", random_state=0)
    >>> result = find_lr(clf, X[:500], y[:500], num_iter=50)
    >>> bool(result.lrs[0] <= result.suggestion <= result.lrs[-1])
    True
    >>> result.suggestion == result.minimum
    True
    >>> clf = clf.set_params(lr=result.suggestion).fit(X[:500], y[:500])
    """
    _check_settings(start_lr, end_lr, num_iter, smooth_f, diverge_th)
    steps = estimator if isinstance(estimator, Pipeline) else None
    if steps is not None:
        estimator = steps[-1]
    if not isinstance(estimator, ImageClassifier):
        raise TypeError(
            f"find_lr needs an ImageClassifier, or a Pipeline ending in one; got "
            f"{type(estimator).__name__}."
        )
    clf = clone(estimator)
    spec = resolve_backbone(clf.backbone)
    checks.check_needs_network(clf, spec, route_of(clf.head, spec), "find_lr")
    if steps is not None and len(steps) > 1:
        X = clone(steps[:-1]).fit_transform(X, y)
    prepared = prepare(clf, X, y, sample_weight)
    with seeded(prepared.seed, prepared.device):
        net, dataset = neural.range_test_net(clf, prepared)
        return _range_test(net, dataset, start_lr, end_lr, num_iter, smooth_f, diverge_th)


def _range_test(net, dataset, start_lr, end_lr, num_iter, smooth_f, diverge_th) -> LRFinderResult:
    factor = (end_lr / start_lr) ** (1 / (num_iter - 1))
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, np.inf
    batches = iter(())

    def next_batch():
        nonlocal batches
        batch = next(batches, None)
        if batch is None:  # another pass over the data, freshly shuffled
            batches = iter(net.get_iterator(dataset, training=True))
            batch = next(batches)
        return batch

    for step in range(num_iter):
        lr = start_lr * factor**step
        for group in net.optimizer_.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        # One optimizer step: with gradient accumulation, the mean loss of its batches.
        loss = float(
            np.mean(
                [
                    net.train_step(next_batch())["loss"].detach().item()
                    for _ in range(net.accumulation_steps)
                ]
            )
        )
        if not np.isfinite(loss):
            break
        average = (1 - smooth_f) * average + smooth_f * loss
        smoothed = average / (1 - (1 - smooth_f) ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > diverge_th * best:
            break
    # As fastai: the rules read the curve without its first tenth (the loss of an
    # untrained network, before the rate matters) and its last 5 steps (the blow-up).
    skip = num_iter // 10
    lrs_array, losses_array = np.array(lrs), np.array(losses)
    kept_lrs, kept = lrs_array[skip:-5], losses_array[skip:-5]
    if len(kept) < 2:
        raise ValueError(
            f"The loss diverged after {len(lrs)} of {num_iter} steps (at lr={lrs[-1]:.3g}), "
            f"too soon to read a rate off the curve; pass a lower start_lr (now "
            f"{start_lr:g})."
        )
    lowest = int(np.argmin(kept))
    if kept[lowest] > 0.99 * kept[0]:
        warn(
            f"The loss did not fall (by 1% or more) over the rates tested "
            f"({kept_lrs[0]:.3g} to {kept_lrs[-1]:.3g}): they are all too low or too "
            f"high, or the network is not learning; the suggestions are unreliable."
        )
    elif lowest == len(kept) - 1 and len(lrs) == num_iter:
        warn(
            f"The loss was still falling at the highest rate tested ({lrs[-1]:.3g}), so "
            f"the suggestion may be too cautious; a higher end_lr shows where training "
            f"becomes unstable."
        )
    minimum = float(kept_lrs[lowest] / 10)
    slopes = np.diff(kept) / np.diff(np.log(kept_lrs))  # forward differences, as fastai
    return LRFinderResult(
        lrs=lrs_array,
        losses=losses_array,
        suggestion=minimum,
        minimum=minimum,
        valley=float(kept_lrs[_valley(kept)]),
        steep=float(kept_lrs[np.argmin(slopes)]),
    )


def _valley(losses: np.ndarray) -> int:
    """fastai's valley rule: the index about halfway down the longest run over which
    the loss decreases (a longest decreasing subsequence, which tolerates noise)."""
    n = len(losses)
    runs = np.ones(n, dtype=int)
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and runs[i] < runs[j] + 1:
                runs[i] = runs[j] + 1
        if runs[end] < runs[i]:
            end = i
            start = end - runs[end]
    third = (end - start) / 3
    return min(n - 1, start + int(third) + int(third / 2))


def _check_settings(start_lr, end_lr, num_iter, smooth_f, diverge_th) -> None:
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < np.inf:
            raise ValueError(f"{name} must be a positive, finite number; got {value!r}.")
    if not start_lr < end_lr:
        raise ValueError(
            f"start_lr must be below end_lr (the rate grows from one to the other); got "
            f"start_lr={start_lr!r}, end_lr={end_lr!r}."
        )
    if isinstance(num_iter, bool) or not isinstance(num_iter, Integral) or num_iter < 2:
        raise ValueError(f"num_iter must be an int of at least 2; got {num_iter!r}.")
    if isinstance(smooth_f, bool) or not isinstance(smooth_f, Real) or not 0 < smooth_f <= 1:
        raise ValueError(f"smooth_f must be in (0, 1]; got {smooth_f!r}.")
    if isinstance(diverge_th, bool) or not isinstance(diverge_th, Real) or not diverge_th > 1:
        raise ValueError(f"diverge_th must be a number above 1; got {diverge_th!r}.")
