"""``create_app``: the ASGI application, its routes and its error responses."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from importlib import resources

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sklimg.io import DEFAULT_MAX_PIXELS
from sklimg.persistence import load
from sklimg.serving._auth import BearerToken
from sklimg.serving._batching import Batcher
from sklimg.serving._model import Prediction, ServedModel
from sklimg.serving._uploads import Limits, RequestError, decode, read_uploads

__all__ = ["create_app"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def create_app(
    model,
    *,
    model_path: str | os.PathLike | None = None,
    max_batch: int = 64,
    max_wait_ms: float = 10.0,
    max_upload_mb: float = 20.0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    token: str | None = None,
    device: str = "auto",
) -> Starlette:
    """An ASGI application that serves a fitted model's predictions over HTTP.

    Routes: ``POST /predict`` (images in multipart fields named ``file``, or one image
    as a raw ``image/*`` body; query ``top_k=K`` and ``saliency=true``), ``GET /model``,
    ``GET /health`` and ``GET /``, a page to try the model in a browser. Requests that
    arrive together are predicted in one ``predict_proba`` call, in one inference
    thread. Run it with any ASGI server (``uvicorn.run(app)``), or mount it in an
    application of your own; ``sklimg serve`` runs it with uvicorn.

    Parameters
    ----------
    model : ImageClassifier, Pipeline, str or path-like
        A fitted classifier (or pipeline ending in one), or the path of a model file
        saved by :func:`sklimg.save`, loaded with :func:`sklimg.load` (never a pickle).
    model_path : str, path-like or None, default=None
        The file ``model`` was loaded from, so that ``GET /model`` reports its SHA-256
        digest; set from ``model`` when it is a path.
    max_batch : int, default=64
        Most images in one ``predict_proba`` call, and in one request.
    max_wait_ms : float, default=10.0
        How long a batch waits for the next request, in milliseconds; it closes 4 such
        windows after its first request at the latest. 0: each request is predicted
        with those already waiting.
    max_upload_mb : float, default=20.0
        Largest request body, in megabytes (2**20 bytes), refused as it streams in.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Largest ``height * width`` of an uploaded image, checked from its header before
        decoding (see :func:`sklimg.io.decode_image`).
    token : str or None, default=None
        When set, every request but ``GET /health`` and the page's static files needs
        ``Authorization: Bearer <token>``.
    device : str, default="auto"
        Where the network runs, when ``model`` is a path (see :func:`sklimg.load`).

    Returns
    -------
    app : starlette.applications.Starlette
        The ASGI application. Its batcher starts and stops with the application's
        lifespan (``with TestClient(app)``, or the ASGI server).

    Raises
    ------
    ValueError
        If ``max_batch`` is not a positive integer, ``max_wait_ms`` is negative,
        ``max_upload_mb`` is not positive, or ``token`` is empty.
    TypeError
        If ``model`` is not a fitted classifier nor a path.
    ModelFileError
        If ``model`` is a path to a file :func:`sklimg.load` refuses.

    See Also
    --------
    sklimg.load : Load a model file safely.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from PIL import Image
    >>> from starlette.testclient import TestClient
    >>> from sklimg import ImageClassifier
    >>> from sklimg.datasets import load_digits_images
    >>> from sklimg.serving import create_app
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X = (X * 255).round().astype(np.uint8)  # as in an 8-bit image file
    >>> clf = ImageClassifier("test_cnn", max_epochs=1, random_state=0).fit(X[:200], y[:200])
    >>> png = io.BytesIO()
    >>> Image.fromarray(X[300]).save(png, format="PNG")
    >>> with TestClient(create_app(clf)) as client:
    ...     answer = client.post("/predict", files={"file": ("digit.png", png.getvalue())})
    >>> answer.status_code
    200
    >>> prediction = answer.json()["predictions"][0]
    >>> sorted(prediction)
    ['file', 'label', 'probabilities', 'probability', 'top_k']
    >>> prediction["label"] == clf.predict(X[300:301])[0].item()
    True
    >>> proba = list(prediction["probabilities"].values())
    >>> bool(np.allclose(proba, clf.predict_proba(X[300:301])[0]))
    True
    """
    _check_number("max_batch", max_batch, integer=True)
    _check_number("max_wait_ms", max_wait_ms, zero=True)
    _check_number("max_upload_mb", max_upload_mb)
    if token is not None and not token:
        raise ValueError("token is empty; pass a secret string, or None for no token.")
    if isinstance(model, str | os.PathLike):
        model_path = model
        model = load(model, device=device)
    served = ServedModel(model, path=model_path)
    limits = Limits(
        max_files=max_batch, max_bytes=int(max_upload_mb * 2**20), max_pixels=max_pixels
    )
    batcher = Batcher(served.predict, max_batch=max_batch, max_wait=max_wait_ms / 1000)
    saliency = _saliency_unavailable(served)

    async def health(request: Request) -> JSONResponse:
        # The batching and the model's busy time, seen from outside.
        return JSONResponse(
            {
                "status": "ok",
                "batches": batcher.batches,
                "images": batcher.items,
                "predict_seconds": round(batcher.seconds, 6),
            }
        )

    async def model_info(request: Request) -> JSONResponse:
        info = served.describe()
        info["saliency"] = saliency is None
        info["limits"] = {
            "max_batch": max_batch,
            "max_upload_mb": max_upload_mb,
            "max_pixels": max_pixels,
        }
        return JSONResponse(info)

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(_asset("index.html"))

    async def predict(request: Request) -> JSONResponse:
        top_k = _top_k(request.query_params.get("top_k"), len(served.classes))
        maps = _flag(request.query_params.get("saliency", ""), "saliency")
        if maps and saliency is not None:
            raise RequestError(400, "saliency_unavailable", saliency)
        uploads = await read_uploads(request, limits)
        images = await run_in_threadpool(decode, uploads, max_pixels, served.prepare)
        try:
            predictions = await batcher.submit(images)
        except (ValueError, TypeError) as exc:  # the model's own checks refused them
            raise RequestError(
                422, "model_refused", f"The model refused the images: {exc}"
            ) from None
        records = [
            _record(served, upload.name, prediction, top_k)
            for upload, prediction in zip(uploads, predictions, strict=True)
        ]
        if maps:
            targets = [served.classes[int(np.argmax(p.proba))] for p in predictions]
            try:
                urls = await batcher.call(served.saliency_pngs, images, targets)
            except ValueError as exc:  # explain's refusals, e.g. a network it cannot read
                raise RequestError(
                    422, "saliency_failed", f"No saliency map for these images: {exc}"
                ) from None
            for record, url in zip(records, urls, strict=True):
                record["saliency"] = url
        return JSONResponse({"predictions": records})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    middleware = [] if token is None else [Middleware(BearerToken, token=token)]
    app = Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/model", model_info, methods=["GET"]),
            Route("/predict", predict, methods=["POST"]),
            Mount("/static", StaticFiles(packages=[("sklimg.serving", "static")]), name="static"),
        ],
        middleware=middleware,
        exception_handlers={RequestError: _request_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.served = served
    app.state.batcher = batcher
    return app


def _check_number(name: str, value, *, integer: bool = False, zero: bool = False) -> None:
    kinds = int if integer else int | float
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not (value > 0 or (zero and value == 0))
    ):
        what = "a positive integer" if integer else "a number >= 0" if zero else "a positive number"
        raise ValueError(f"{name} must be {what}; got {value!r}.")


def _record(served: ServedModel, name: str, prediction: Prediction, top_k: int) -> dict:
    """One image's entry in the answer of ``POST /predict``."""
    proba = prediction.proba
    # Stable: ties keep the order of classes_, as predict_proba's argmax does.
    best = np.argsort(-proba, kind="stable")[:top_k]
    top = served.classes[int(best[0])]
    record = {
        "file": name,
        "label": served.unknown_label if prediction.unknown else top,
        "probability": float(proba[best[0]]),
        "probabilities": {str(c): float(p) for c, p in zip(served.classes, proba, strict=True)},
        "top_k": [{"label": served.classes[int(j)], "probability": float(proba[j])} for j in best],
    }
    if prediction.unknown is not None:
        record["unknown"] = prediction.unknown
        record["unknown_score"] = prediction.unknown_score
    return record


def _top_k(text: str | None, n_classes: int) -> int:
    if text is None:
        return min(5, n_classes)
    if not text.isdigit() or int(text) < 1:
        raise RequestError(
            400,
            "bad_query",
            f"top_k must be a positive integer (e.g. /predict?top_k=3); got {text!r}.",
        )
    return min(int(text), n_classes)


def _flag(text: str, name: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise RequestError(
        400, "bad_query", f"{name} must be true or false (e.g. ?{name}=true); got {text!r}."
    )


def _saliency_unavailable(served: ServedModel) -> str | None:
    """Why this server cannot draw saliency maps, or None when it can."""
    if not served.has_saliency:
        return (
            f"Saliency maps explain an ImageClassifier; this model is a "
            f"{type(served.classifier).__name__}. Leave out saliency=true."
        )
    if importlib.util.find_spec("captum") is None:
        return (
            "Saliency maps need captum, which is not installed on the server: pip install "
            '"sklimg[explain]" there, or leave out saliency=true.'
        )
    return None


def _asset(name: str) -> str:
    return resources.files("sklimg.serving").joinpath("static", name).read_text("utf-8")


async def _request_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestError)
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}},
        status_code=exc.status,
        # Without it, uvicorn reads and drops the rest of a refused body after the answer.
        headers={"connection": "close"} if exc.close else None,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": {"code": "http_" + str(exc.status_code), "message": exc.detail}},
        status_code=exc.status_code,
        headers=exc.headers,
    )
