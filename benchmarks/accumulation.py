"""What gradient accumulation costs: batches of 16 summed in groups of 4, against
batches of 64 (the same step) and batches of 16 stepping one by one (the same memory).

``ImageClassifier()`` (the default ``cnn_small``, 15 epochs) on the 1,347 training
digits, best of 3, the fits alternating so that all see the same load. Without
BatchNorm, accumulated batches train exactly as the large batch (the tests check it);
``cnn_small`` normalises each batch of 16 alone, so its figures differ a little.

    python benchmarks/accumulation.py [--quick]
"""

from _common import compare_fits, digits_split, parse_args, report

from sklimg import ImageClassifier

args = parse_args(__doc__)
epochs, repeats = (1, 1) if args.quick else (15, 3)
settings = {
    "batch_size=64": {"batch_size": 64},
    "batch_size=16, gradient_accumulation_steps=4": {
        "batch_size": 16,
        "gradient_accumulation_steps": 4,
    },
    "batch_size=16": {"batch_size": 16},
}
fits = {
    name: (ImageClassifier(max_epochs=epochs, random_state=0, **params), {})
    for name, params in settings.items()
}
report("accumulation", compare_fits(fits, digits_split(), repeats=repeats))
