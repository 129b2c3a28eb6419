"""What weights per image cost: fit time without weights and with unit weights.

``ImageClassifier()`` (the default ``cnn_small``, 15 epochs) on the 1,347 training
digits, best of 3, the two fits alternating so both see the same load. Unit weights
train the same model, so the held-out accuracies must agree too.

    python benchmarks/sample_weight.py [--quick]
"""

import numpy as np
from _common import compare_fits, digits_split, parse_args, report

from sklimg import ImageClassifier

args = parse_args(__doc__)
data = digits_split()
epochs, repeats = (1, 1) if args.quick else (15, 3)
weights = {"none": None, "unit weights": np.ones(len(data[2]))}
fits = {
    name: (ImageClassifier(max_epochs=epochs, random_state=0), {"sample_weight": sample_weight})
    for name, sample_weight in weights.items()
}
report("sample_weight", compare_fits(fits, data, repeats=repeats, label="sample_weight"))
