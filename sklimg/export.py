"""Export a fitted classifier's network to ONNX, to predict without Python or torch.

:func:`export_onnx` writes the network with its input conversion (channels-last
images, ``uint8`` scaling, resizing to the input size, normalisation) and a softmax,
so that ``onnxruntime`` (or any ONNX runtime) gives what ``predict_proba`` gives. The
class labels go into the file's metadata. It uses torch's exporter
(``torch.onnx.export(..., dynamo=True)``), which needs the ``onnx`` and ``onnxscript``
packages: ``pip install "sklimg[onnx]"`` (which also installs ``onnxruntime``).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from sklimg._training.net import bare_module
from sklimg._version import versions
from sklimg.classifier import ImageClassifier

__all__ = ["export_onnx"]

_DTYPES = {"float32": torch.float32, "uint8": torch.uint8}


class _Exported(nn.Module):
    """The network as predict runs it: ``(N, H, W, C)`` images in, probabilities out."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(images.permute(0, 3, 1, 2)), dim=1)


def export_onnx(model, path: str | os.PathLike, *, input_dtype: str = "float32") -> Path:
    """Write a fitted :class:`~sklimg.ImageClassifier`'s network as an ONNX file.

    The graph takes a batch of images of the size and channels the classifier was
    fitted on, channels last, ``(N, H, W, C)`` (``C`` is 1 for grayscale), any ``N``,
    and returns the class probabilities ``(N, n_classes)``, in the order of
    ``model.classes_``, as ``predict_proba`` does. The file's metadata holds
    ``classes`` (the labels, as JSON), ``sklimg_version`` and ``input_layout``. Test-time
    augmentation (``tta``) is not part of the graph: it gives the probabilities of the
    images as they are.

    Parameters
    ----------
    model : ImageClassifier
        Fitted, with a neural head (``head=None`` and a deep backbone).
    path : str or path-like
        The file to write, e.g. ``"model.onnx"``.
    input_dtype : {"float32", "uint8"}, default="float32"
        The images' type in the graph. ``"uint8"``: pixels 0-255 as decoded from image
        files, scaled to [0, 1] in the graph, as sklimg does for ``uint8`` arrays.
        ``"float32"``: values as sklimg sees them (images that were ``uint8`` at fit
        as [0, 1]).

    Returns
    -------
    path : pathlib.Path
        The file written.

    Raises
    ------
    NotFittedError
        If the model is not fitted.
    TypeError
        If ``model`` is not an :class:`~sklimg.ImageClassifier`.
    ValueError
        For a scikit-learn head (export the features with ``transform`` and the head
        with ``skl2onnx``) or an unknown ``input_dtype``.
    ImportError
        Without the ``onnx`` and ``onnxscript`` packages.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, onnxruntime
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg.export import export_onnx
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X[:100], y[:100])
    >>> path = export_onnx(clf, os.path.join(tempfile.mkdtemp(), "digits.onnx"))
    >>> session = onnxruntime.InferenceSession(path)
    >>> proba = session.run(None, {"images": X[:5, :, :, None]})[0]
    >>> bool(np.allclose(proba, clf.predict_proba(X[:5]), atol=1e-5))
    True
    """
    if type(model) is not ImageClassifier:
        raise TypeError(
            f"export_onnx exports an ImageClassifier; got {type(model).__name__}. For a "
            f"pipeline, export its classifier (pipeline[-1]) and apply the steps before it "
            f"yourself."
        )
    check_is_fitted(model)
    if not hasattr(model, "net_") or hasattr(model, "head_"):
        raise ValueError(
            "export_onnx exports a network with its neural head; this classifier has a "
            "scikit-learn head. Export the features instead (the network of "
            "DeepFeatures) and the head with skl2onnx, or fit with head=None."
        )
    if input_dtype not in _DTYPES:
        raise ValueError(f"input_dtype must be 'float32' or 'uint8'; got {input_dtype!r}.")
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as exc:
        raise ImportError(
            f"export_onnx needs the onnx and onnxscript packages ({exc}); install them "
            f'with pip install "sklimg[onnx]".'
        ) from None
    if model.tta is not None:
        warnings.warn(
            f"tta={model.tta!r} is not exported: the ONNX graph gives the probabilities "
            f"of the images as they are, without averaging over views.",
            UserWarning,
            stacklevel=2,
        )
    # A copy on the CPU in eval mode: the model itself keeps its device and state.
    network = copy.deepcopy(bare_module(model.net_)).cpu().eval()
    height, width, channels = model.input_shape_
    example = torch.zeros((2, height, width, channels), dtype=_DTYPES[input_dtype])
    path = Path(path)
    with torch.no_grad():
        program = torch.onnx.export(
            _Exported(network).eval(),
            (example,),
            input_names=["images"],
            output_names=["probabilities"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
        )
    graph = program.model_proto
    labels = [c.item() if isinstance(c, np.generic) else c for c in model.classes_]
    onnx.helper.set_model_props(
        graph,
        {
            "classes": json.dumps(labels),
            "sklimg_version": versions()["sklimg"],
            "input_layout": "NHWC",
        },
    )
    onnx.save(graph, path)
    return path
