"""How :class:`~sklimg.ImageClassifier` fits: one preparation (:mod:`.run`) shared by
``fit``, ``partial_fit`` and the learning-rate finder, the checks no parameter
constraint can express (:mod:`.checks`, asked by the command line too), two routes
(:mod:`.neural`, :mod:`.head`) that return what they fitted, and the two fitted-state
schemas (:mod:`.state`) the classifier sets its attributes from.
"""
