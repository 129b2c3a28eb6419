"""The ``sklimg`` command: train, predict, evaluate, explain, audit data, serve and list
backbones from a shell.

::

    sklimg train photos/ --backbone cnn_small --epochs 10 --validation-fraction 0.2
    sklimg predict model.sklimg new/ --top-k 3
    sklimg evaluate model.sklimg test/ --confusion-matrix cm.png --errors errors.png
    sklimg explain model.sklimg photo.jpg --out maps/
    sklimg audit photos/ --test-dir test/ --out audit.csv --plot issues.png
    sklimg serve model.sklimg --port 8000
    sklimg backbones --pattern "resnet*"

Also ``python -m sklimg``. Models are saved in the safe format of :func:`sklimg.save`
(JSON, tensors and allow-listed scikit-learn heads, never a pickle), classical
backbones included; ``--format joblib`` writes a pickle instead, and reading such a file
back needs ``--allow-pickle``.

**Image sizes.** A network takes images of one size. ``sklimg train`` reads every
file's header first (nothing is decoded): images that share a size are used as they
are; images of several sizes need ``--image-size``, which resizes all of them
(stretching, bilinear with antialiasing). The size used is recorded in the model file
(``metadata={"image_size": [h, w]}``), and ``predict`` and ``evaluate`` resize every
image to it, so they take images of any size. Likewise, a folder mixing grayscale and
colour files trains on RGB, and later images are converted to the model's channels.

Errors print one line, ``sklimg: error: ...``, and exit with status 1 (2 for a wrong
command line); ``--debug`` shows the traceback instead. Settings the classifier refuses
or warns about are checked by the same functions as in Python, before any image is
read, and worded in the command's flags.

Layout: :mod:`._main` (``main``, the parser, errors on one line), :mod:`._commands`
(the registry of commands), one module per command (:mod:`.train`, :mod:`.predict`,
:mod:`.evaluate`, :mod:`.explain`, :mod:`.audit`, :mod:`.serve`, :mod:`.backbones`), and
what they share: argument types (:mod:`._types`), printed output (:mod:`._output`), how
settings are worded in flags (:mod:`._flags`), reading model files (:mod:`._models`) and
class folders (:mod:`._folders`).
"""

from sklimg.cli._commands import CommandError
from sklimg.cli._main import build_parser, main

__all__ = ["CommandError", "build_parser", "main"]
