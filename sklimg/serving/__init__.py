"""Serve a fitted model over HTTP: :func:`create_app` builds an ASGI application
(Starlette), which ``sklimg serve`` runs with uvicorn.

Needs the ``serve`` extra: ``pip install "sklimg[serve]"``.

Layout: :mod:`._app` (``create_app``, the routes, error responses), :mod:`._uploads`
(reading a request's images within the limits, decoding them with :mod:`sklimg.io`),
:mod:`._batching` (requests that arrive together in one ``predict_proba`` call, in one
inference thread), :mod:`._model` (the model as served: input sizes, predictions,
saliency overlays, its description), :mod:`._auth` (``--token``), :mod:`._memory`
(the allocator set to keep each batch's memory for the next), and ``static/``,
the page at ``GET /`` (HTML, CSS and JavaScript, no build step, nothing fetched).
"""

try:
    import python_multipart  # noqa: F401  (the forms of POST /predict)
    import starlette  # noqa: F401
except ImportError as exc:
    raise ImportError(
        f'sklimg.serving needs the "serve" extra ({exc.name} is missing): '
        f'pip install "sklimg[serve]"'
    ) from exc

from sklimg.serving._app import create_app
from sklimg.serving._memory import GLIBC_TUNABLES

__all__ = ["GLIBC_TUNABLES", "create_app"]
