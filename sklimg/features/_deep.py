"""Frozen deep features: a (pretrained) backbone as a feature extractor, computed once."""

from __future__ import annotations

import copy
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from sklimg._cache import FeatureCache, image_digests, module_digest, resolve_memory
from sklimg._lazy import sample_images
from sklimg._network import build_backbone
from sklimg._torch_data import ImageBatchLoader, default_num_workers, image_dataset
from sklimg._tta import TTA_POLICIES, average_over_views, check_tta
from sklimg.backbones import BackboneSpec, resolve_backbone
from sklimg.utils._sklearn_compat import HasMethods, Interval, StrOptions, _fit_context
from sklimg.utils._torch_utils import resolve_device, seed_from_random_state, seeded
from sklimg.utils.validation import as_images, check_same_shape

__all__ = [
    "DeepFeatures",
    "extract_features",
    "extractor_features",
    "features_of",
    "fitted_deep_features",
]


def extract_features(
    network: nn.Module,
    images,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    num_workers: int | None = None,
    memory=None,
    tta: str | None = None,
) -> np.ndarray:
    """Features of every image through a frozen network, each image computed once.

    Parameters
    ----------
    network : torch.nn.Module
        Maps raw image batches ``(N, C, H, W)`` to features ``(N, D)``; run in eval
        mode under ``torch.inference_mode()``.
    images : array-like of shape (n, H, W[, C]), list of arrays, file paths or LazyImages
        Validated as every estimator validates its input.
    batch_size : int, default=256
    device : str, default="cpu"
    num_workers : int or None, default=None
        DataLoader workers for lazy images (see :class:`~sklimg.ImageClassifier`).
    memory : str, path-like, joblib.Memory or None, default=None
        Cache folder: features are stored per image content and extractor, and reused
        by later calls (other CV folds, other grid points). Not used for augmented
        (random) images.
    tta : {None, "flip", "flip_translate"}, default=None
        Average each image's features over views of it: the image and its mirror, and
        with ``"flip_translate"`` that pair shifted one pixel up-left and down-right
        (see :class:`~sklimg.ImageClassifier`'s ``tta``).

    Returns
    -------
    features : ndarray of shape (n, D), float32

    Raises
    ------
    ImageInputError
        If the images are unusable (see :func:`~sklimg.utils.validation.as_images`).
    ValueError
        If ``batch_size`` is not a positive int or ``tta`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from sklimg.features import extract_features
    >>> network = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8, 4))
    >>> images = np.random.default_rng(0).random((10, 8, 8, 1), dtype=np.float32)
    >>> extract_features(network, images, batch_size=4).shape
    (10, 4)
    """
    images = as_images(images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    check_tta(tta)
    return features_of(
        network,
        images,
        batch_size=batch_size,
        device=device,
        num_workers=num_workers,
        memory=memory,
        tta=tta,
    )


def features_of(
    network: nn.Module,
    images,
    *,
    batch_size: int,
    device: str,
    num_workers: int | None,
    memory=None,
    tta: str | None = None,
) -> np.ndarray:
    """:func:`extract_features` of images already validated, with checked settings:
    the loop over batches, through the feature cache when ``memory`` is set."""

    def compute(indices=None) -> np.ndarray:
        subset = images if indices is None else images[indices]
        loader = ImageBatchLoader(
            image_dataset(subset),
            batch_size=batch_size,
            num_workers=default_num_workers(subset, num_workers),
            pin_memory=device.startswith("cuda"),
        )
        was_training = network.training
        network.eval().to(device)
        outputs = []
        try:
            with torch.inference_mode():
                for xb, _ in loader:
                    outputs.append(average_over_views(network, xb.to(device), tta).float().cpu())
        finally:
            network.train(was_training)
        return torch.cat(outputs).numpy()

    location = resolve_memory(memory)
    digests = image_digests(images) if location is not None else None
    if digests is None:
        return compute()
    extractor = module_digest(network) + (f"-tta-{tta}" if tta else "")
    return FeatureCache(location, extractor).get_or_compute(digests, compute)


class DeepFeatures(TransformerMixin, BaseEstimator):
    """Frozen features of a deep backbone, for any scikit-learn model.

    The backbone (pretrained by default) maps each image to a feature vector; nothing
    is trained. With ``memory``, each image's features are computed once and reused
    across fits, cross-validation folds and grid points.

    Parameters
    ----------
    backbone : str, BackboneSpec or torch.nn.Module, default="resnet18"
        See :class:`~sklimg.ImageClassifier`.
    pretrained : bool, default=True
        Use the backbone's pretrained weights (see :class:`~sklimg.ImageClassifier`).
    weights : str, path-like or None, default=None
        Specific weights: a local file or a torchvision weights name.
    backbone_kwargs : dict or None, default=None
        Extra arguments for the backbone builder.
    layer : str or None, default=None
        Take the features from this layer of the backbone, globally average-pooled,
        instead of from its last layer; the layers after it are not computed. A name
        from the backbone's ``named_modules()``, e.g. ``"layer3"`` for a torchvision
        ResNet or ``"_blocks.11"`` for ``"efficientnet_lite0"``. Middle layers hold
        more generic features (edges, textures, parts) and often transfer better to
        images far from the pretraining data: on 5,000 Fashion-MNIST images,
        EfficientNet-Lite0's ``"_blocks.11"`` beats its last layer by about 5 points.
        The best layer depends on the data; tune it like any other parameter.
    tta : {"flip", "flip_translate"} or None, default=None
        Average each image's features over views of it, at fit and transform alike:
        the image and its left-right mirror (``"flip"``: 2 forward passes), and with
        ``"flip_translate"`` that pair shifted one pixel up-left and down-right (6
        passes). The features then hardly change when an image is mirrored. Only for
        images that keep their class when mirrored.
    input_size : "auto", int or tuple of int, default="auto"
        Size the network sees (pretrained: the weights' size, 224 for torchvision).
    batch_size : int, default=64
        Images per forward pass.
    device : str or torch.device, default="auto"
        ``"auto"``: CUDA when available, else the CPU.
    memory : str, path-like, joblib.Memory or None, default=None
        Folder caching features per image content and extractor.
    num_workers : int or None, default=None
        DataLoader workers that decode image files.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation of randomly initialised backbones.

    Attributes
    ----------
    network_ : ImageNetwork
        The frozen feature extractor (adapter and backbone).
    n_features_out_ : int
        Length of the feature vectors.
    input_shape_ : tuple of int
        ``(H, W, C)`` of the images seen at fit.
    backbone_spec_ : BackboneSpec

    Examples
    --------
    >>> import numpy as np
    >>> from sklimg.features import DeepFeatures
    >>> X = np.random.default_rng(0).random((6, 16, 16, 3), dtype=np.float32)
    >>> DeepFeatures("test_cnn", pretrained=False, random_state=0).fit_transform(X).shape
    (6, 16)
    """

    _parameter_constraints: dict = {
        "backbone": [str, BackboneSpec, nn.Module, type],
        "pretrained": ["boolean"],
        "weights": [None, str, HasMethods("__fspath__")],
        "backbone_kwargs": [None, dict],
        "layer": [None, str],
        "tta": [None, StrOptions(set(TTA_POLICIES))],
        "input_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), tuple],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "memory": [None, str, HasMethods("__fspath__"), HasMethods("cache")],
        "num_workers": [None, Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        backbone="resnet18",
        *,
        pretrained=True,
        weights=None,
        backbone_kwargs=None,
        layer=None,
        tta=None,
        input_size="auto",
        batch_size=64,
        device="auto",
        memory=None,
        num_workers=None,
        random_state=None,
    ):
        self.backbone = backbone
        self.pretrained = pretrained
        self.weights = weights
        self.backbone_kwargs = backbone_kwargs
        self.layer = layer
        self.tta = tta
        self.input_size = input_size
        self.batch_size = batch_size
        self.device = device
        self.memory = memory
        self.num_workers = num_workers
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the frozen extractor for images like ``X`` (nothing is trained).

        Parameters
        ----------
        X : array-like of shape (n, H, W[, C]), list of arrays, file paths or LazyImages
        y : ignored

        Returns
        -------
        self
        """
        return self._fit_sample(sample_images(as_images(X)))

    def _fit_sample(self, sample: np.ndarray):
        """Fit on validated images (or a decoded sample of lazy ones): their shape and,
        for a backbone trained from scratch, their statistics are all it reads."""
        spec = resolve_backbone(self.backbone)
        if spec.kind == "classical":
            raise ValueError(
                f"DeepFeatures computes a network's features; {spec.name!r} is a classical "
                f"backbone with no network. Use its transformer (e.g. sklimg.features.HOG), "
                f"or a deep backbone such as 'resnet18'."
            )
        device = resolve_device(self.device)
        with seeded(seed_from_random_state(self.random_state), device):
            built = build_backbone(
                spec,
                sample,
                pretrained=self.pretrained,
                weights=self.weights,
                backbone_kwargs=self.backbone_kwargs,
                input_size=self.input_size,
                layer=self.layer,
            )
        return self._keep(built.network(), spec, sample.shape[1:], device)

    def _keep(self, network, spec: BackboneSpec, input_shape, device: str):
        """Set the fitted attributes around ``network``, frozen on ``device``."""
        network = network.freeze_backbone().eval().to(device)
        self.network_ = (
            network.use_channels_last() if device == "cpu" and spec.channels_last else network
        )
        self.n_features_out_ = int(network.architecture["feature_dim"])
        self.input_shape_ = tuple(int(s) for s in input_shape)
        self.backbone_spec_ = spec
        return self

    def transform(self, X) -> np.ndarray:
        """Features of each image.

        Parameters
        ----------
        X : array-like of shape (n, H, W[, C]), list of arrays, file paths or LazyImages
            Images of the size and channels seen at fit.

        Returns
        -------
        features : ndarray of shape (n, n_features_out), float32
        """
        check_is_fitted(self)
        images = as_images(X)
        check_same_shape(sample_images(images, 1), self.input_shape_, type(self).__name__)
        return extractor_features(self, images, tta=self.tta)

    def __getstate__(self):
        # Pickle the network from the CPU, so a model fitted on a GPU loads without one
        # (transform moves it to its device again).
        state = dict(super().__getstate__())  # a copy: it can be this object's __dict__
        network = state.get("network_")
        if network is not None and any(
            t.device.type != "cpu" for t in network.state_dict().values()
        ):
            state["network_"] = copy.deepcopy(network).cpu()
        return state

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``deepfeatures0 ... deepfeatures{D-1}``."""
        check_is_fitted(self)
        return np.array([f"deepfeatures{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


def extractor_features(extractor: DeepFeatures, images, *, tta: str | None) -> np.ndarray:
    """What a fitted :class:`DeepFeatures` computes for validated ``images``, averaged
    over the views of ``tta``, which may differ from its own (a scikit-learn head
    fitted on single views predicts on averaged ones)."""
    return features_of(
        extractor.network_,
        images,
        batch_size=extractor.batch_size,
        device=resolve_device(extractor.device),
        num_workers=extractor.num_workers,
        memory=extractor.memory,
        tta=tta,
    )


def fitted_deep_features(sample: np.ndarray, **params) -> DeepFeatures:
    """A :class:`DeepFeatures` with ``params``, fitted on images already validated:
    ``sample`` as :func:`~sklimg._lazy.sample_images` gives them (a scikit-learn head's
    extractor, built from the images its classifier checked)."""
    extractor = DeepFeatures(**params)
    extractor._validate_params()
    return extractor._fit_sample(sample)


def loaded_deep_features(network, input_shape: tuple, **params) -> DeepFeatures:
    """A :class:`DeepFeatures` with ``params``, fitted around a saved ``network`` (an
    ``ImageNetwork`` without a head, its weights loaded) for images of ``input_shape``
    ``(H, W, C)``: a scikit-learn head's extractor as ``sklimg.load`` rebuilds it."""
    extractor = DeepFeatures(**params)
    extractor._validate_params()
    spec = resolve_backbone(extractor.backbone)
    return extractor._keep(network, spec, input_shape, resolve_device(extractor.device))
