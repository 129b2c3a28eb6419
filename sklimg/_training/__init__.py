"""The skorch side of training: the net (:mod:`.net`), its callbacks
(:mod:`.callbacks`), and the plan that configures both (:mod:`.plan`).

:class:`~sklimg.ImageClassifier` wraps (does not subclass) skorch: the neural route
builds the net it keeps as ``net_`` with :func:`sklimg._training.plan.build_net`.
"""
