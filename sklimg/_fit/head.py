"""The scikit-learn-head route: frozen features, computed once, and a scikit-learn
classifier fitted on them.

The features come from a classical transformer (HOG, LBP, ...: a classical backbone) or
from a frozen deep backbone (:class:`~sklimg.features.DeepFeatures`); the head is the
user's, or a standardised ``LogisticRegression``. The head is fitted on single-view
features and predicts, with ``tta``, on features averaged over views, which is why the
route keeps the extractor and the head apart rather than in one ``Pipeline``; so do
``sample_weight`` (routed to the steps of a ``Pipeline`` head that take it) and the
feature cache (``memory``). The route hands ``keep`` a
:class:`~sklimg._fit.state.HeadFit`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from sklearn import get_config
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import has_fit_parameter

from sklimg._cache import cached_transform
from sklimg._fit import checks, trust
from sklimg._fit.run import Prepared
from sklimg._fit.state import HeadFit, images_seen
from sklimg.features import DeepFeatures
from sklimg.features._deep import extractor_features, fitted_deep_features
from sklimg.utils._introspection import takes_keyword
from sklimg.utils._torch_utils import seeded

__all__ = [
    "classical_extractor",
    "deep_features_params",
    "default_head",
    "features",
    "fit",
    "logits",
    "partial_fit",
    "predict_proba",
]


def default_head():
    """The scikit-learn head used when none is given: standardised logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def fit(clf, prepared: Prepared, *, keep: Callable[[HeadFit], None]) -> None:
    """Compute the frozen features of ``prepared`` once, then fit the head on them.

    With calibration or an unknown answer, the head is fitted on all but a stratified
    held-out part (``validation_fraction``, or 0.1; with ``groups``, whole groups), on
    which they are then fitted.
    """
    classes = np.unique(prepared.y)
    checks.class_weights(clf.class_weight, classes, prepared.y)  # for the default head
    head = clone(clf.head) if clf.head is not None else default_head()
    trust.check_trust(clf, "head", head, classes)
    if clf.head is None:
        head.set_params(logisticregression__class_weight=clf.class_weight)
    y, weights = prepared.y, prepared.sample_weight
    train = valid = None
    if trust.wanted(clf):
        fraction = checks.validation_fraction_of(clf)
        if prepared.groups is not None:
            checks.check_validation_split(
                np.searchsorted(classes, y), len(classes), fraction, prepared.groups
            )
        train, valid = trust.held_out(y, fraction, prepared.seed, prepared.groups)
        y, weights = y[train], None if weights is None else weights[train]
    fit_params = head_fit_params(head, weights)
    with seeded(prepared.seed, prepared.device):
        extractor = feature_extractor(clf, prepared)
        all_features = features(extractor, prepared.images, clf.memory)
        head.fit(all_features if train is None else all_features[train], y, **fit_params)
    state = _state(classes, prepared, extractor, head)
    if train is not None:
        encoded = np.searchsorted(classes, prepared.y)
        method = trust.head_logits_method(head)
        state = dataclasses.replace(
            state,
            trust=trust.fit(
                clf,
                classes,
                prepared.seed,
                head=head,
                train_y=encoded[train],
                train_features=lambda indices: all_features[train][indices],
                valid_y=encoded[valid],
                valid_features=all_features[valid],
                valid_logits=None if method is None else logits(head, all_features[valid]),
            ),
        )
    keep(state)


def partial_fit(
    clf, prepared: Prepared, classes: np.ndarray, *, first: bool, keep: Callable[[HeadFit], None]
) -> None:
    """The head's ``partial_fit`` on the frozen features of ``prepared`` (the first
    call builds the extractor; later ones reuse it and the head)."""
    with seeded(prepared.seed, prepared.device):
        if first:
            extractor, head = feature_extractor(clf, prepared), clone(clf.head)
        else:
            extractor, head = clf.feature_extractor_, clf.head_
        fit_params = {}
        if prepared.sample_weight is not None:
            if not takes_keyword(head.partial_fit, "sample_weight"):
                raise ValueError(
                    f"sample_weight needs a head whose partial_fit takes sample_weight; "
                    f"{head!r} does not. Use a head that does (e.g. SGDClassifier()), or "
                    f"head=None for a neural head."
                )
            fit_params["sample_weight"] = prepared.sample_weight
        head.partial_fit(
            features(extractor, prepared.images, clf.memory),
            prepared.y,
            classes=classes,
            **fit_params,
        )
    if first:
        keep(_state(classes, prepared, extractor, head))


def _state(classes, prepared: Prepared, extractor, head) -> HeadFit:
    return HeadFit(
        classes=classes,
        backbone_spec=prepared.spec,
        **images_seen(prepared.sample),
        feature_extractor=extractor,
        head=head,
    )


def feature_extractor(clf, prepared: Prepared):
    """The frozen extractor the head is fitted on, built for ``prepared``'s images."""
    spec, sample = prepared.spec, prepared.sample
    if spec.kind == "classical":
        return classical_extractor(clf, spec, prepared.images[:1])
    return fitted_deep_features(
        sample, **deep_features_params(clf, spec, prepared.device, prepared.seed)
    )


def classical_extractor(clf, spec, first):
    """A classical backbone's transformer with ``clf``'s ``backbone_kwargs``, fitted on
    the ``first`` image (an array of one): its fit reads only the shape."""
    extractor = spec.build(in_chans=first.shape[-1], **(clf.backbone_kwargs or {}))
    return extractor.fit(first)


def deep_features_params(clf, spec, device: str, seed) -> dict:
    """The :class:`~sklimg.features.DeepFeatures` parameters of ``clf``'s frozen deep
    backbone (for fitting it, and for ``sklimg.load`` rebuilding it)."""
    return dict(
        backbone=spec,
        pretrained=clf.pretrained,
        weights=clf.weights,
        backbone_kwargs=clf.backbone_kwargs,
        input_size=clf.input_size,
        batch_size=clf.batch_size,
        device=device,
        memory=clf.memory,
        num_workers=clf.num_workers,
        random_state=seed,
    )


def features(extractor, images, memory, *, tta: str | None = None) -> np.ndarray:
    """The frozen features of validated images: for a deep extractor averaged over the
    views of ``tta`` (a head fitted on single views predicts on averaged ones), for a
    classical one through the feature cache when ``memory`` is set."""
    if isinstance(extractor, DeepFeatures):
        return extractor_features(extractor, images, tta=tta)
    return cached_transform(extractor, images, memory)


def predict_proba(head, features: np.ndarray) -> np.ndarray:
    """A fitted scikit-learn head's probabilities for ``features``, in float64 with
    rows that sum to 1: a head fitted on float32 features answers in float32, whose
    rows miss 1 by up to ~1e-7, over the 1.5e-8 that scikit-learn's ``log_loss``
    checks."""
    proba = np.asarray(head.predict_proba(features), dtype=np.float64)
    return proba / proba.sum(axis=1, keepdims=True)


def logits(head, features: np.ndarray) -> np.ndarray:
    """A fitted scikit-learn head's logits for ``features``: its decision function
    (a binary one as the two columns ``[0, d]``, whose softmax is the sigmoid of
    ``d``), else its log-probabilities (0 as the smallest float64 log)."""
    method = trust.head_logits_method(head)
    if method is None:
        raise AttributeError(
            f"The head {head!r} has neither decision_function nor predict_log_proba."
        )
    with np.errstate(divide="ignore"):  # a forest's probabilities of 0
        values = np.asarray(getattr(head, method)(features), dtype=np.float64)
    # log(0) as the smallest finite log-probability, so that temperatures and scores
    # stay finite.
    values = np.maximum(values, np.log(np.finfo(np.float64).tiny))
    if values.ndim == 1:
        values = np.column_stack([np.zeros_like(values), values])
    return values


def head_fit_params(head, sample_weight: np.ndarray | None) -> dict:
    """``fit`` keywords giving ``sample_weight`` to a scikit-learn head: to the head,
    or to each step of a ``Pipeline`` head that takes it (with metadata routing on,
    through the steps' fit requests, set on this clone of the head). Raises when the
    head (a pipeline's last step) cannot take it."""
    if sample_weight is None:
        return {}
    steps = head.steps if isinstance(head, Pipeline) else [(None, head)]
    if not _takes_sample_weight(steps[-1][1]):
        raise ValueError(
            f"sample_weight needs a head whose fit takes sample_weight; {steps[-1][1]!r} "
            f"does not. Use a head that does (e.g. LogisticRegression(), SVC()), or "
            f"head=None for a neural head."
        )
    takers = [
        (name, step)
        for name, step in steps
        if step not in (None, "passthrough") and _takes_sample_weight(step)
    ]
    if isinstance(head, Pipeline) and get_config()["enable_metadata_routing"]:
        for _, step in takers:
            step.set_fit_request(sample_weight=True)
        return {"sample_weight": sample_weight}
    return {
        "sample_weight" if name is None else f"{name}__sample_weight": sample_weight
        for name, step in takers
    }


def _takes_sample_weight(estimator) -> bool:
    """Whether ``estimator.fit`` takes ``sample_weight``, named or through ``**params``
    (meta-estimators such as ``GridSearchCV`` pass it on)."""
    return has_fit_parameter(estimator, "sample_weight") or (
        not isinstance(estimator, Pipeline) and takes_keyword(estimator.fit, "sample_weight")
    )
