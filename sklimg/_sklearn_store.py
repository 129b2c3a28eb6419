"""Fitted scikit-learn estimators as bytes that load without pickle: a skops file,
loaded with an allow-list.

The safe model format (:mod:`sklimg.persistence`) keeps a scikit-learn head with this
module. skops rebuilds objects from a schema instead of running pickle's
instructions, and refuses every type it is not told to trust. It trusts most of
scikit-learn, numpy and scipy by default; this module trusts a few more scikit-learn
types that hold only settings and arrays (:data:`TRUSTED`), and the decision trees'
node storage once its node indices have been checked (:func:`check_trees`): scikit-learn
follows those indices without bounds checks, so a hostile file could otherwise crash
the process or make ``predict`` loop forever. Anything else (a type from another
library, a user-defined class, histogram gradient boosting's or the k-d tree's node
arrays, which are not checked here) is refused with its name.
"""

from __future__ import annotations

import numpy as np
import skops.io as sio
from sklearn.tree._tree import Tree
from skops.io.exceptions import UntrustedTypesFoundException

__all__ = ["TRUSTED", "check_trees", "dumps", "loads", "untrusted_types"]

_TREE = "sklearn.tree._tree.Tree"

#: scikit-learn types, beyond skops's defaults, that hold settings and arrays only and
#: that no prediction indexes unchecked: the MLP's optimizer state, a search's scorer and
#: splitter, calibration's fitted calibrators.
TRUSTED = frozenset(
    {
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.metrics._scorer._Scorer",
        "sklearn.model_selection._split.KFold",
        "sklearn.model_selection._split.StratifiedKFold",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        _TREE,  # after check_trees
    }
)


class UnstorableError(ValueError):
    """An estimator, or bytes, holding types the allow-list does not trust."""

    def __init__(self, types: list[str]) -> None:
        self.types = types
        super().__init__(", ".join(types))


def untrusted_types(estimator) -> list[str]:
    """The types in ``estimator`` that :func:`loads` would refuse (empty if none)."""
    try:
        dumps(estimator)
    except UnstorableError as exc:
        return exc.types
    return []


def dumps(estimator) -> bytes:
    """``estimator`` as skops bytes.

    Raises
    ------
    UnstorableError
        If it holds a type :func:`loads` would refuse, or skops cannot write it;
        ``types`` says which, or what skops met.
    """
    try:
        data = sio.dumps(estimator)
    except Exception as exc:  # skops cannot represent it at all: say what it met
        what = f"an object skops cannot store ({type(exc).__name__}: {exc})"
        raise UnstorableError([what]) from None
    refused = _refused(sio.get_untrusted_types(data=data))
    if refused:
        raise UnstorableError(refused)
    return data


def loads(data: bytes):
    """The estimator :func:`dumps` wrote, after checking every type it names.

    Raises
    ------
    UnstorableError
        If the bytes name a type outside the allow-list.
    ValueError
        If they are not a skops file, or hold a decision tree whose node indices are
        out of range or do not lead down the tree.
    """
    try:
        named = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a damaged or foreign member
        raise ValueError(f"not a skops file ({type(exc).__name__}: {exc})") from None
    refused = _refused(named)
    if refused:
        raise UnstorableError(refused)
    try:
        estimator = sio.loads(data, trusted=[name for name in named if name in TRUSTED])
    except UntrustedTypesFoundException as exc:  # not expected after the check above
        raise UnstorableError([str(exc)]) from None
    except Exception as exc:
        raise ValueError(f"its skops data do not load ({type(exc).__name__}: {exc})") from None
    check_trees(estimator)
    return estimator


def _refused(named: list[str]) -> list[str]:
    return sorted(name for name in named if name not in TRUSTED)


def check_trees(estimator) -> None:
    """Refuse decision trees whose nodes scikit-learn could not follow safely.

    Every internal node's children must come after it in the node array (as
    scikit-learn's builders number them), so a prediction walks down and stops; every
    index must be within the arrays, and every split feature a column of the input.

    Raises
    ------
    ValueError
        Naming the first tree and node that break this.
    """
    for tree in _trees(estimator):
        n = int(tree.node_count)
        left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
        feature = np.asarray(tree.feature)
        if not (len(left) == len(right) == len(feature) == n >= 1 and tree.value.shape[0] == n):
            raise ValueError(f"a decision tree's node arrays disagree on its {n} nodes")
        nodes = np.arange(n)
        leaf = left == -1
        bad = (
            (leaf != (right == -1))
            | (~leaf & ((left <= nodes) | (right <= nodes) | (left >= n) | (right >= n)))
            | (~leaf & ((feature < 0) | (feature >= tree.n_features)))
        )
        if bad.any():
            raise ValueError(
                f"a decision tree's node {int(np.flatnonzero(bad)[0])} points outside the "
                f"tree or back up it"
            )


def _trees(root):
    """Every :class:`~sklearn.tree._tree.Tree` reachable from ``root`` through
    attributes, lists, tuples, dicts and object arrays."""
    seen, stack = set(), [root]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Tree):
            yield item
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, np.ndarray):
            if item.dtype == object:
                stack.extend(item.ravel().tolist())
        elif hasattr(item, "__dict__"):
            stack.extend(vars(item).values())
