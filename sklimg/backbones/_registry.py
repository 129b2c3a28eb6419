"""The backbone registry: one :class:`BackboneSpec` per name.

Like timm's ``_registry.py`` and ``PretrainedCfg``, every fact about a backbone (how
to build it, the input size and normalisation its weights expect, its feature size)
lives in its spec, so no call site hard-codes them.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

from torch import nn

from sklimg.backbones._weights import load_matching_state_dict
from sklimg.exceptions import UnknownBackboneError

__all__ = ["BackboneSpec", "get_backbone", "list_backbones", "register_backbone"]

_REGISTRY: dict[str, BackboneSpec] = {}


@dataclass(frozen=True)
class BackboneSpec:
    """Everything sklimg needs to know about one backbone.

    A backbone maps a batch of images ``(N, C, H, W)`` to features ``(N, D)`` (or
    ``(N, D, h, w)``, which sklimg pools); the classifier puts a head on top.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"resnet18"``.
    builder : callable
        ``builder(*, in_chans, small_input, state_dict=None, **kwargs) -> nn.Module``
        returning the feature extractor (the original classification head removed).
        ``state_dict`` holds pretrained weights for the original model, loaded before
        the head is removed.
    input_size : tuple of int or None, default=(224, 224)
        ``(H, W)`` the pretrained weights were trained at; pretrained backbones see
        images resized to it unless ``input_size`` is given to the classifier.
        ``None`` when unknown (a user's module).
    min_input_size : tuple of int, default=(1, 1)
        Smallest ``(H, W)`` the network handles in the configuration used for small
        images; smaller images are upsampled to it.
    feature_dim : int or None, default=None
        Size of the feature vector (``None`` when unknown before building).
    mean, std : tuple of float or None, default=None
        Per-channel normalisation the pretrained weights expect, for inputs in
        [0, 1]. Networks trained from scratch are normalised with the statistics of
        the training images instead.
    in_chans : int or None, default=3
        Channels the network takes. ``None``: the builder adapts to any count. With 3,
        grayscale images are repeated to RGB on the fly.
    pretrained_weights : str or None, default=None
        The torchvision weights that ``pretrained=True`` loads, e.g.
        ``"DEFAULT"`` (resolved through ``torchvision_name``) or
        ``"ResNet18_Weights.IMAGENET1K_V1"``; with ``weights_loader``, a name for
        the weights it provides; ``None`` when none exist.
    torchvision_name : str or None, default=None
        The torchvision model name, used to resolve short weight names such as
        ``"IMAGENET1K_V1"``.
    small_input_below : int or None, default=None
        When trained from scratch on images whose shorter side is below this, the
        builder gets ``small_input=True`` and adapts the stem (e.g. a 3x3 stride-1
        first convolution and no max-pool for ResNets, as for CIFAR), so small images
        keep their resolution through the network instead of being upsampled.
    description : str, default=""
        One line for tables and ``sklimg backbones``.
    default_kwargs : dict, default={}
        Arguments always passed to the builder; ``backbone_kwargs`` override them.
    channels_last : bool, default=True
        Whether the network may run in channels-last memory format (faster on the
        CPU). ``False`` for users' modules, which may ``view`` their tensors.
    kind : {"deep", "classical"}, default="deep"
        ``"classical"``: the builder returns a scikit-learn feature transformer
        (HOG, LBP, ...) instead of a torch module; such backbones always get a
        scikit-learn head.
    weights_loader : callable or None, default=None
        ``weights_loader() -> state_dict`` returning the pretrained weights of the
        original model from a local source (e.g. an installed package), used by
        ``pretrained=True`` instead of torchvision's weights API. A module-level
        function, so that fitted models pickle.
    feature_maps : tuple of str, or callable, default=()
        The modules whose outputs are the backbone's successive feature maps (its
        stages), by their names in ``backbone.named_modules()``, in order; or a
        module-level function ``feature_maps(backbone) -> tuple of str`` for a layout
        that depends on ``backbone_kwargs``. :func:`sklimg.explain`'s Grad-CAM reads
        the last of them whose map is at least 8 pixels on its shorter side for the
        images explained (``layer3`` of a ResNet on 32x32 images, where ``layer4``
        is 4x4). ``()``: found by running the network (a user's module): its last
        activations and blocks.

    Examples
    --------
    A network for 1-channel images whose feature maps sklimg pools, trained by an
    ``ImageClassifier`` as it would train a registered backbone:

    >>> from torch import nn
    >>> from sklimg import ImageClassifier
    >>> from sklimg.backbones import BackboneSpec
    >>> from sklimg.utils.estimator_checks import make_image_data
    >>> def build(*, in_chans, small_input, state_dict=None):
    ...     return nn.Sequential(nn.Conv2d(in_chans, 8, 3, padding=1), nn.ReLU())
    >>> spec = BackboneSpec("two_layer", build, input_size=None, feature_dim=8, in_chans=1)
    >>> X, y = make_image_data()
    >>> clf = ImageClassifier(backbone=spec, max_epochs=2, random_state=0).fit(X, y)
    >>> clf.backbone_spec_.name
    'two_layer'
    """

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int] | None = (224, 224)
    min_input_size: tuple[int, int] = (1, 1)
    feature_dim: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    in_chans: int | None = 3
    pretrained_weights: str | None = None
    torchvision_name: str | None = None
    small_input_below: int | None = None
    description: str = ""
    default_kwargs: dict[str, Any] = field(default_factory=dict)
    weights_loader: Callable[[], dict[str, Any]] | None = None
    kind: str = "deep"
    channels_last: bool = True
    feature_maps: tuple[str, ...] | Callable[[nn.Module], tuple[str, ...]] = ()

    def build(
        self,
        *,
        in_chans: int,
        small_input: bool = False,
        state_dict: dict | None = None,
        **kwargs: Any,
    ) -> nn.Module:
        """Build the feature extractor.

        Parameters
        ----------
        in_chans : int
            Channels of the images the network will receive.
        small_input : bool, default=False
            Adapt the stem for small images (see ``small_input_below``).
        state_dict : dict or None, default=None
            Pretrained weights of the original model.
        **kwargs
            Extra arguments for the builder (``backbone_kwargs`` of the classifier).

        Returns
        -------
        module : torch.nn.Module

        Raises
        ------
        TypeError
            If the builder does not take ``kwargs``, naming the backbone.
        """
        try:
            return self.builder(
                in_chans=in_chans,
                small_input=small_input,
                state_dict=state_dict,
                **{**self.default_kwargs, **kwargs},
            )
        except TypeError as exc:
            raise TypeError(
                f"Could not build backbone {self.name!r} with backbone_kwargs={kwargs!r}: {exc}"
            ) from exc

    def feature_map_names(self, backbone: nn.Module) -> tuple[str, ...]:
        """The names of ``backbone``'s stage outputs (see ``feature_maps``).

        Parameters
        ----------
        backbone : torch.nn.Module
            A network this spec built.

        Returns
        -------
        names : tuple of str
            Empty when the spec records none.
        """
        if callable(self.feature_maps):
            return tuple(self.feature_maps(backbone))
        return tuple(self.feature_maps)

    def plan_input(
        self, image_size: tuple[int, int], *, pretrained: bool, requested="auto"
    ) -> tuple[tuple[int, int] | None, bool]:
        """Decide the network's input size and whether to use the small-image stem.

        This is the one place where input sizes are decided.

        Parameters
        ----------
        image_size : tuple of int
            ``(H, W)`` of the training images.
        pretrained : bool
            Whether pretrained weights are loaded.
        requested : "auto", int or tuple of int, default="auto"
            The classifier's ``input_size`` parameter.

        Returns
        -------
        resize_to : tuple of int or None
            ``(H, W)`` every batch is resized to on the fly, or ``None`` to keep images
            as they are.
        small_input : bool
            Whether to build the small-image stem.
        """
        if requested == "auto":
            if pretrained and self.input_size:
                target = tuple(self.input_size)
            else:
                target = tuple(
                    max(s, m) for s, m in zip(image_size, self.min_input_size, strict=True)
                )
        else:
            target = (
                (int(requested), int(requested))
                if isinstance(requested, Integral)
                else tuple(int(s) for s in requested)
            )
        small = (
            not pretrained
            and self.small_input_below is not None
            and min(target) < self.small_input_below
        )
        return (None if target == tuple(image_size) else target), small


def register_backbone(spec: BackboneSpec, *, overwrite: bool = False) -> BackboneSpec:
    """Add a backbone to the registry.

    Parameters
    ----------
    spec : BackboneSpec
        The backbone; its ``name`` is the key.
    overwrite : bool, default=False
        Replace an existing entry of the same name instead of raising.

    Returns
    -------
    spec : BackboneSpec

    Raises
    ------
    ValueError
        If the name is not a non-empty string without ``"+"`` (which combines
        classical backbones), or is taken and ``overwrite`` is False.

    Examples
    --------
    >>> from torch import nn
    >>> from sklimg.backbones import BackboneSpec, register_backbone, get_backbone
    >>> def flat(*, in_chans, small_input, state_dict=None):
    ...     return nn.Flatten()
    >>> spec = register_backbone(BackboneSpec("flat_pixels", flat, in_chans=None))
    >>> get_backbone("flat_pixels").name
    'flat_pixels'
    """
    if not isinstance(spec, BackboneSpec):
        raise TypeError(f"register_backbone expects a BackboneSpec; got {type(spec).__name__}.")
    if not isinstance(spec.name, str) or not spec.name.strip() or "+" in spec.name:
        raise ValueError(
            f"A backbone name must be a non-empty string without '+' ('+' combines "
            f"classical backbones, as in 'hog+lbp'); got {spec.name!r}."
        )
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(
            f"A backbone named {spec.name!r} is already registered; pick another name or "
            f"pass overwrite=True."
        )
    _REGISTRY[spec.name] = spec
    return spec


def list_backbones(pattern: str = "*", *, pretrained: bool | None = None) -> list[str]:
    """Names of registered backbones, sorted, filtered by a shell-style pattern.

    Parameters
    ----------
    pattern : str, default="*"
        ``fnmatch`` pattern, e.g. ``"resnet*"``.
    pretrained : bool or None, default=None
        ``True``: only backbones with pretrained weights; ``False``: only those without.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from sklimg.backbones import list_backbones
    >>> list_backbones("resnet*")
    ['resnet18', 'resnet34', 'resnet50']
    """
    names = sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
    if pretrained is not None:
        names = [n for n in names if (_REGISTRY[n].pretrained_weights is not None) == pretrained]
    return names


def get_backbone(name: str) -> BackboneSpec:
    """The spec registered under ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    spec : BackboneSpec

    Raises
    ------
    UnknownBackboneError
        If no backbone has that name; the message lists close matches.

    Examples
    --------
    >>> from sklimg.backbones import get_backbone
    >>> get_backbone("resnet18").feature_dim
    512
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownBackboneError(
            f"Unknown backbone {name!r}.{hint} See sklimg.backbones.list_backbones() for "
            f"all {len(_REGISTRY)} names, or pass a torch.nn.Module.",
            name=str(name),
            close=close,
        ) from None


@dataclass(frozen=True)
class _ModuleBuilder:
    """Builds a user's ``nn.Module`` (class or instance) as a backbone.

    A class is instantiated with the backbone kwargs; an instance is deep-copied so that
    every fit starts from the same weights. A picklable class, not a closure, so fitted
    classifiers pickle.
    """

    module: Any

    def __call__(self, *, in_chans, small_input, state_dict=None, **kwargs):
        if isinstance(self.module, nn.Module):
            if kwargs:
                raise TypeError(
                    "backbone_kwargs cannot be applied to a module instance; pass the "
                    "module class instead, or configure the instance yourself."
                )
            module = copy.deepcopy(self.module)
        else:
            module = self.module(**kwargs)
        if state_dict is not None:
            load_matching_state_dict(module, state_dict)
        return module


@dataclass(frozen=True)
class _UnionBuilder:
    """Builds a FeatureUnion of classical feature transformers ("hog+lbp")."""

    parts: tuple[BackboneSpec, ...]

    def __call__(self, *, in_chans, small_input=False, state_dict=None, **kwargs):
        from sklearn.pipeline import FeatureUnion

        unknown = set(kwargs) - {p.name for p in self.parts}
        if unknown:
            raise TypeError(
                f"backbone_kwargs for a combination are keyed by part name "
                f"({[p.name for p in self.parts]}); got {sorted(unknown)}."
            )
        return FeatureUnion(
            [(p.name, p.build(in_chans=in_chans, **kwargs.get(p.name, {}))) for p in self.parts]
        )


def _combined(name: str) -> BackboneSpec:
    parts = tuple(get_backbone(part.strip()) for part in name.split("+"))
    deep = [p.name for p in parts if p.kind != "classical"]
    if deep:
        raise ValueError(
            f"Only classical feature backbones combine with '+'; {deep} in {name!r} are "
            f"deep networks. Combine deep features with sklearn.pipeline.make_union("
            f"sklimg.features.DeepFeatures(...), ...) instead."
        )
    return BackboneSpec(
        name=name, builder=_UnionBuilder(parts), input_size=None, in_chans=None, kind="classical"
    )


def resolve_backbone(backbone) -> BackboneSpec:
    """Turn the classifier's ``backbone`` parameter into a spec.

    Parameters
    ----------
    backbone : str, BackboneSpec, torch.nn.Module instance or subclass
        A registry name (classical ones combine with ``"+"``, e.g. ``"hog+lbp"``), a
        spec, or a user's network mapping images ``(N, C, H, W)`` to features
        ``(N, D)`` or ``(N, D, h, w)``.

    Returns
    -------
    spec : BackboneSpec

    Examples
    --------
    >>> from sklimg.backbones import TinyCNN, resolve_backbone
    >>> resolve_backbone("resnet18").feature_dim
    512
    >>> resolve_backbone("hog+lbp").kind
    'classical'
    >>> resolve_backbone(TinyCNN).name
    'TinyCNN'
    """
    if isinstance(backbone, BackboneSpec):
        return backbone
    if isinstance(backbone, str):
        if "+" in backbone:
            return _combined(backbone)
        return get_backbone(backbone)
    if isinstance(backbone, nn.Module) or (
        isinstance(backbone, type) and issubclass(backbone, nn.Module)
    ):
        name = backbone.__name__ if isinstance(backbone, type) else type(backbone).__name__
        # in_chans=None: the user's module gets the images' channels as they are.
        return BackboneSpec(
            name=name,
            builder=_ModuleBuilder(backbone),
            in_chans=None,
            input_size=None,
            channels_last=False,
        )
    raise TypeError(
        f"backbone must be a registry name (see sklimg.backbones.list_backbones()), a "
        f"BackboneSpec, or a torch.nn.Module class or instance; got {type(backbone).__name__}."
    )
