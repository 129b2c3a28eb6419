"""Classical feature extractors (scikit-image) as backbones: HOG, LBP, colour, pixels.

Their builders return the scikit-learn transformers of :mod:`sklimg.features`, so
``ImageClassifier(backbone="hog")`` and ``make_pipeline(HOG(), LogisticRegression())``
are the same model, and ``set_params(backbone=...)`` can switch between classical and
deep routes in a grid search.
"""

from __future__ import annotations

from sklimg.backbones._registry import BackboneSpec, register_backbone


# Imported when built: sklimg.features imports the deep extractor, which imports this
# registry.
def _hog(*, in_chans, small_input=False, state_dict=None, **kwargs):
    from sklimg.features import HOG

    return HOG(**kwargs)


def _lbp(*, in_chans, small_input=False, state_dict=None, **kwargs):
    from sklimg.features import LBP

    return LBP(**kwargs)


def _color_histogram(*, in_chans, small_input=False, state_dict=None, **kwargs):
    from sklimg.features import ColorHistogram

    return ColorHistogram(**kwargs)


def _pixels(*, in_chans, small_input=False, state_dict=None, **kwargs):
    from sklimg.features import PixelFeatures

    return PixelFeatures(**kwargs)


for _name, _builder, _desc in [
    ("hog", _hog, "histograms of oriented gradients (scikit-image)"),
    ("lbp", _lbp, "local binary pattern histograms (scikit-image)"),
    ("color_histogram", _color_histogram, "per-channel colour histograms"),
    ("pixels", _pixels, "raw pixels, flattened"),
]:
    register_backbone(
        BackboneSpec(
            name=_name,
            builder=_builder,
            input_size=None,
            in_chans=None,
            kind="classical",
            description=f"classical: {_desc}",
        )
    )
