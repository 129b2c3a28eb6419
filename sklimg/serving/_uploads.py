"""What a ``POST /predict`` request holds: its images, read within the server's limits,
and decoded by sklimg's own file checks (:mod:`sklimg.io`).

Every problem is a :class:`RequestError` with an HTTP status in the 4xx range, a short
code and a message that says what was wrong and how to send it instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from sklimg.exceptions import ImageInputError
from sklimg.io import decode_image

__all__ = ["Limits", "RequestError", "Upload", "decode", "read_uploads"]

# The form field that holds the images (repeated for several), as in curl -F file=@x.png.
FIELD = "file"
_USAGE = (
    "Send images as multipart/form-data fields named 'file' (curl -F file=@photo.jpg), "
    "or one image as the raw body with its image/* content type (curl --data-binary "
    "@photo.jpg -H 'Content-Type: image/jpeg')."
)


# A body refused for its declared size is read (and dropped) after the answer up to this
# many times the limit; beyond, the connection is closed.
_DRAINED = 4


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx), ``code`` and ``message``; with
    ``close``, the connection is closed after the answer instead of the rest of the
    body being read and dropped."""

    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.close = close


@dataclass(frozen=True)
class Limits:
    """How much one request may hold.

    Parameters
    ----------
    max_files : int
        Images per request.
    max_bytes : int
        Bytes of the request body, all images together.
    max_pixels : int or None
        ``height * width`` of one image, checked from its header before decoding.
    """

    max_files: int
    max_bytes: int
    max_pixels: int | None


@dataclass(frozen=True)
class Upload:
    """One uploaded image, as received: its name for messages and its bytes."""

    name: str
    data: bytes


async def read_uploads(request: Request, limits: Limits) -> list[Upload]:
    """The images of a request, in upload order, the body's size checked as it arrives.

    Raises
    ------
    RequestError
        For a body over ``limits.max_bytes`` (413, as soon as its declared length or
        the bytes received so far exceed it), a content type that is neither
        ``multipart/form-data`` nor ``image/*`` (415), an empty body, a malformed form,
        fields other than image files named ``file``, an empty file, or more than
        ``limits.max_files`` images (400).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        # Refused from the headers: not one byte of the body is read. The server then
        # drops what the client still sends, so that the client, which often sends the
        # whole body before it reads, gets the answer; a body far over the limit is not
        # worth that: the connection is closed.
        raise _too_large(
            limits,
            f"declares {int(declared):,} bytes",
            close=int(declared) > _DRAINED * limits.max_bytes,
        )
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    body = _limited(request.stream(), limits)
    if kind == "multipart/form-data":
        uploads = await _from_form(request, body, limits)
    elif kind.startswith("image/"):
        data = b"".join([chunk async for chunk in body])
        if not data:
            raise RequestError(
                400, "empty_body", f"The request body is empty; it should be the image. {_USAGE}"
            )
        uploads = [Upload("the request body", data)]
    else:
        got = f"content type {content_type!r}" if content_type else "no content type"
        raise RequestError(
            415,
            "unsupported_content_type",
            f"POST /predict takes images; the request has {got}. {_USAGE}",
        )
    if not uploads:
        raise RequestError(400, "no_images", f"The form holds no image. {_USAGE}")
    return uploads


async def _limited(stream: AsyncIterator[bytes], limits: Limits) -> AsyncIterator[bytes]:
    """The body's chunks, refused once more than ``limits.max_bytes`` have arrived (a
    chunked body declares no length)."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limits.max_bytes:
            raise _too_large(limits, f"sent more than {limits.max_bytes:,} bytes")
        yield chunk


def _too_large(limits: Limits, what: str, *, close: bool = False) -> RequestError:
    megabytes = limits.max_bytes / 2**20
    return RequestError(
        413,
        "upload_too_large",
        f"The request {what}; the server takes at most {megabytes:g} MB per request "
        f"(sklimg serve --max-upload-mb). Send fewer or smaller images per request.",
        close=close,
    )


async def _from_form(request: Request, body: AsyncIterator[bytes], limits: Limits) -> list:
    parser = MultiPartParser(
        request.headers,
        body,
        max_files=limits.max_files,
        max_fields=16,  # text fields are refused below; a few are read to name them
        max_part_size=64 * 2**10,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        if exc.message.startswith("Too many files"):
            raise RequestError(
                400,
                "too_many_files",
                f"The request holds more than {limits.max_files} images, the most one "
                f"request may hold (sklimg serve --max-batch); send them in several "
                f"requests.",
            ) from None
        raise RequestError(
            400, "bad_form", f"The multipart form could not be read: {exc.message} {_USAGE}"
        ) from None
    try:
        uploads = []
        for name, value in form.multi_items():
            if not isinstance(value, UploadFile):
                raise RequestError(
                    400,
                    "not_a_file",
                    f"Form field {name!r} is text, not a file. {_USAGE}",
                )
            if name != FIELD:
                raise RequestError(
                    400,
                    "unexpected_field",
                    f"Form field {name!r} is not read: images go in fields named "
                    f"{FIELD!r}. {_USAGE}",
                )
            filename = value.filename or f"image {len(uploads) + 1}"
            data = await value.read()
            if not data:
                raise RequestError(
                    400, "empty_file", f"File {filename!r} is empty (0 bytes); send the image."
                )
            uploads.append(Upload(filename, data))
        return uploads
    finally:
        await form.close()


def decode(uploads: list[Upload], max_pixels: int | None, prepare: Callable) -> list[np.ndarray]:
    """Each upload decoded by :func:`sklimg.io.decode_image` (its size checked from the
    header before any pixel is decoded) and passed through ``prepare``; blocking, so run
    it in a worker thread.

    Raises
    ------
    RequestError
        422 for a file that is not an image, is damaged or truncated, or is larger than
        ``max_pixels`` (a decompression bomb), naming the file.
    """
    images = []
    for upload in uploads:
        try:
            image = decode_image(upload.data, name=upload.name, max_pixels=max_pixels)
        except ImageInputError as exc:
            raise RequestError(422, "bad_image", str(exc)) from None
        images.append(prepare(image))
    return images
