"""The one place that imports private scikit-learn API.

scikit-learn's parameter validation (``_fit_context`` and the constraint classes) is
private; keeping the imports here means a scikit-learn release that moves them breaks
one module, not every estimator (imbalanced-learn does the same in ``imblearn/base.py``).
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_params,
)

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "_fit_context",
    "validate_params",
]
