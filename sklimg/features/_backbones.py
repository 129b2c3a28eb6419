"""The classical feature transformers as backbones: HOG, LBP, colour, pixels.

Registered here, above the registry, as timm's model files register their builders:
``ImageClassifier(backbone="hog")`` and ``make_pipeline(HOG(), LogisticRegression())``
are the same model, and ``set_params(backbone=...)`` can switch between classical and
deep routes in a grid search. Such backbones always get a scikit-learn head.
"""

from __future__ import annotations

from dataclasses import dataclass

from sklimg.backbones import BackboneSpec, register_backbone
from sklimg.features._classical import HOG, LBP, ColorHistogram, PixelFeatures

__all__ = ["TransformerBuilder"]


@dataclass(frozen=True)
class TransformerBuilder:
    """Builds a classical feature transformer from ``backbone_kwargs`` (picklable, so
    that fitted classifiers pickle). Channels, the small-image stem and pretrained
    weights do not apply to it."""

    transformer: type

    def __call__(self, *, in_chans, small_input=False, state_dict=None, **kwargs):
        return self.transformer(**kwargs)


for _name, _transformer, _description in [
    ("hog", HOG, "histograms of oriented gradients (scikit-image)"),
    ("lbp", LBP, "local binary pattern histograms (scikit-image)"),
    ("color_histogram", ColorHistogram, "per-channel colour histograms"),
    ("pixels", PixelFeatures, "raw pixels, flattened"),
]:
    register_backbone(
        BackboneSpec(
            name=_name,
            builder=TransformerBuilder(_transformer),
            input_size=None,
            in_chans=None,
            kind="classical",
            description=f"classical: {_description}",
        )
    )
