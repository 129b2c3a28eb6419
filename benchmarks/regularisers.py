"""What the batch-level regularisers cost per fit: mixing (``mix``) and the weight
average (``ema_decay``).

``ImageClassifier()`` (the default ``cnn_small``, 15 epochs) on the 1,347 training
digits, best of 3, the fits alternating so that all see the same load, with nothing,
with each ``mix`` method and with ``ema_decay=0.999``. Their accuracy, which needs
longer runs on more images, is measured by ``mix.py`` and ``ema.py``.

    python benchmarks/regularisers.py [--quick]
"""

from _common import compare_fits, digits_split, parse_args, report

from sklimg import ImageClassifier

args = parse_args(__doc__)
epochs, repeats = (1, 1) if args.quick else (15, 3)
settings = {
    "none": {},
    "mix='mixup'": {"mix": "mixup"},
    "mix='cutmix'": {"mix": "cutmix"},
    "ema_decay=0.999": {"ema_decay": 0.999},
}
fits = {
    name: (ImageClassifier(max_epochs=epochs, random_state=0, **params), {})
    for name, params in settings.items()
}
report("regularisers", compare_fits(fits, digits_split(), repeats=repeats))
