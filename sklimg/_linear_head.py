"""A fitted scikit-learn head as a torch module, where the head is a chain of linear maps.

Gradients need the head in torch: a frozen deep backbone with a scikit-learn
``LogisticRegression`` (the default head of that route, after a ``StandardScaler``),
a linear SVM or a ridge classifier, with scalers or PCA before it, computes its logits
(:func:`sklimg._fit.head.logits`: the decision function, a binary one as ``[0, d]``)
by affine maps that torch can run and differentiate. Other heads (kernels, trees,
neighbours) have none, and :func:`linear_head` returns ``None`` for them.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

__all__ = ["linear_head"]


def linear_head(head) -> nn.Sequential | None:
    """The logits of the fitted scikit-learn ``head`` as torch layers, or ``None``.

    Parameters
    ----------
    head : fitted scikit-learn classifier or Pipeline
        ``StandardScaler`` and ``PCA`` steps, then a linear model with ``coef_``,
        ``intercept_`` and ``decision_function``.

    Returns
    -------
    torch.nn.Sequential or None
        ``nn.Linear`` layers (float32, no gradients for their weights) mapping
        features ``(N, D)`` to the head's logits ``(N, n_classes)``.
    """
    steps = [s for _, s in head.steps] if isinstance(head, Pipeline) else [head]
    steps = [s for s in steps if s is not None and s != "passthrough"]
    maps = [_affine(step) for step in steps[:-1]]
    maps.append(_decision(steps[-1]))
    if any(m is None for m in maps):
        return None
    layers = []
    for weight, bias in maps:
        layer = nn.Linear(weight.shape[1], weight.shape[0])
        layer.weight.data = torch.as_tensor(weight, dtype=torch.float32)
        layer.bias.data = torch.as_tensor(bias, dtype=torch.float32)
        layer.requires_grad_(False)
        layers.append(layer)
    return nn.Sequential(*layers)


def _affine(step) -> tuple[np.ndarray, np.ndarray] | None:
    """``(W, b)`` with ``step.transform(x) == x @ W.T + b``, for the steps that are."""
    if isinstance(step, StandardScaler):
        n = step.n_features_in_
        mean = step.mean_ if step.with_mean else np.zeros(n)
        scale = step.scale_ if step.with_std else np.ones(n)
        return np.diag(1 / scale), -mean / scale
    if isinstance(step, PCA):
        weight = step.components_
        if step.whiten:
            weight = weight / np.sqrt(step.explained_variance_)[:, None]
        return weight, -weight @ step.mean_
    return None


def _decision(model) -> tuple[np.ndarray, np.ndarray] | None:
    """The linear decision function ``(W, b)`` of a classifier, binary ones as the two
    rows ``[0, w]`` (as :func:`sklimg._fit.head.logits` widens them)."""
    if not all(hasattr(model, a) for a in ("coef_", "intercept_", "decision_function")):
        return None
    coef = np.atleast_2d(np.array(model.coef_, dtype=np.float64))  # a copy: writable
    intercept = np.array(np.broadcast_to(np.asarray(model.intercept_, np.float64), len(coef)))
    if coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    return coef, intercept
