"""sklimg serve and sklimg.serving.create_app: the real server (uvicorn in a new
process, over HTTP on loopback) answers as model.predict_proba does, refuses each bad
upload with a 4xx that names the problem and keeps answering; SIGTERM lets the request
in flight finish. In-process checks of create_app through starlette's TestClient."""

import base64
import hashlib
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import httpx2
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

import sklimg
from sklimg.cli._models import prepare_images
from sklimg.exceptions import ModelFileError
from sklimg.serving import GLIBC_TUNABLES, create_app
from tests.serving_helpers import (
    MAX_BATCH,
    MAX_UPLOAD_MB,
    Server,
    colour_images,
    write_images,
)
from tests.serving_helpers import files_of_paths as files_of


@pytest.fixture(scope="module")
def model_file(serving_model_file):
    return serving_model_file


@pytest.fixture(scope="module")
def model(model_file):
    return sklimg.load(model_file, device="cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("serve_images"))


@pytest.fixture(scope="module")
def expected(model, images):
    """What the model answers for the files, read as 'sklimg predict' reads them."""
    prepared = prepare_images(model, [str(p) for p in images])
    return np.asarray(model.predict_proba(prepared)), model.predict(prepared)


@pytest.fixture(scope="module")
def server(serving_server):
    return serving_server


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def assert_answers(predictions, expected, indices):
    """The server's predictions are the model's for the files ``indices``, in order."""
    proba, labels = expected
    got = np.array([list(p["probabilities"].values()) for p in predictions])
    np.testing.assert_allclose(got, proba[indices], rtol=0, atol=1e-6)
    assert [p["label"] for p in predictions] == labels[indices].tolist()


def assert_still_answers(server, images, expected):
    """After a refused request, a good one is answered correctly."""
    answer = httpx2.post(server.url + "/predict", files=files_of(images[:2]), timeout=30)
    assert answer.status_code == 200, answer.text
    assert_answers(answer.json()["predictions"], expected, [0, 1])


# The real server -------------------------------------------------------------------


def test_predictions_equal_predict_proba(server, model, images, expected):
    answer = httpx2.post(server.url + "/predict", files=files_of(images), timeout=30)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["file"] for p in predictions] == [p.name for p in images]  # upload order
    assert_answers(predictions, expected, list(range(len(images))))
    proba = expected[0]
    for p, row in zip(predictions, proba, strict=True):
        assert list(p["probabilities"]) == list(model.classes_)
        assert [t["label"] for t in p["top_k"]] == model.classes_[np.argsort(-row)].tolist()
        assert isinstance(p["unknown"], bool)
        assert p["unknown"] == (p["unknown_score"] > model.unknown_threshold_)


def test_raw_image_body(server, images, expected):
    answer = httpx2.post(
        server.url + "/predict?top_k=1",
        content=images[-2].read_bytes(),  # a JPEG larger than the training size
        headers={"content-type": "image/jpeg"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    assert len(prediction["top_k"]) == 1
    assert_answers([prediction], expected, [len(images) - 2])


def test_model_and_health(server, model_file):
    assert httpx2.get(server.url + "/health").json()["status"] == "ok"
    info = httpx2.get(server.url + "/model").json()
    assert info["classes"] == ["blue", "green", "red"]
    assert info["input_shape"] == [10, 10, 3]
    assert info["backbone"] == "test_cnn"
    assert info["versions"]["sklimg"] == sklimg.__version__
    assert info["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert info["unknown"] is True and info["unknown_label"] == "unknown"


def test_concurrent_requests_are_batched(server, images, expected):
    before = httpx2.get(server.url + "/health").json()
    barrier = threading.Barrier(MAX_BATCH)
    answers = [None] * MAX_BATCH

    def send(i):
        barrier.wait()
        answers[i] = httpx2.post(server.url + "/predict", files=files_of([images[i]]), timeout=30)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(MAX_BATCH)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    for i, answer in enumerate(answers):
        assert answer.status_code == 200, answer.text
        assert_answers(answer.json()["predictions"], expected, [i])
    after = httpx2.get(server.url + "/health").json()
    assert after["images"] - before["images"] == MAX_BATCH
    # Requests that arrived within --max-wait-ms of each other shared a batch.
    assert after["batches"] - before["batches"] < MAX_BATCH
    assert 0 < after["predict_seconds"] - before["predict_seconds"] < wall


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width x height`` pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


BAD_CASES = [
    "not an image", "truncated", "decompression bomb", "wrong content type",
    "no content type", "empty body", "empty file", "too many files", "other field",
    "text field", "text in a form", "no image in a form", "broken form", "bad top_k",
    "bad saliency",
]  # fmt: skip


def bad_requests(images):
    png = images[0].read_bytes()
    return {
        "not an image": (
            {"files": [("file", ("notes.png", b"these are not pixels\n"))]},
            422, "bad_image", "'notes.png' is not an image file",
        ),
        "truncated": (
            {"files": [("file", ("cut.png", png[: len(png) // 2]))]},
            422, "bad_image", "'cut.png'",
        ),
        "decompression bomb": (
            {"files": [("file", ("bomb.png", bomb_png(12_000, 12_000)))]},
            422, "bad_image", "decompression bomb",
        ),
        "wrong content type": (
            {"content": png, "headers": {"content-type": "application/octet-stream"}},
            415, "unsupported_content_type", "'application/octet-stream'",
        ),
        "no content type": ({"content": png}, 415, "unsupported_content_type", "no content type"),
        "empty body": (
            {"content": b"", "headers": {"content-type": "image/png"}},
            400, "empty_body", "body is empty",
        ),
        "empty file": (
            {"files": [("file", ("zero.png", b""))]}, 400, "empty_file", "'zero.png' is empty",
        ),
        "too many files": (
            {"files": [("file", (f"{i}.png", png)) for i in range(MAX_BATCH + 1)]},
            400, "too_many_files", f"more than {MAX_BATCH} images",
        ),
        "other field": (
            {"files": [("photo", ("a.png", png))]}, 400, "unexpected_field", "'photo'",
        ),
        "text field": ({"data": {"file": "a.png"}}, 415, "unsupported_content_type", "urlencoded"),
        "text in a form": (
            {"data": {"file": "a.png"}, "files": [("file", ("a.png", png))]},
            400, "not_a_file", "'file' is text",
        ),
        "no image in a form": (
            {
                "content": b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--\r\n",
                "headers": {"content-type": "multipart/form-data; boundary=b"},
            },
            400, "not_a_file", "'x' is text",
        ),
        "broken form": (
            {"content": b"garbage", "headers": {"content-type": "multipart/form-data"}},
            400, "bad_form", "boundary",
        ),
        "bad top_k": ({"files": [("file", ("a.png", png))], "params": {"top_k": "two"}},
                      400, "bad_query", "top_k"),
        "bad saliency": ({"files": [("file", ("a.png", png))], "params": {"saliency": "maybe"}},
                         400, "bad_query", "saliency"),
    }  # fmt: skip


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_upload_gets_a_4xx_and_the_server_still_answers(server, images, expected, case):
    cases = bad_requests(images)
    assert sorted(cases) == sorted(BAD_CASES)
    request, status, code, words = cases[case]
    answer = httpx2.post(server.url + "/predict", timeout=30, **request)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert words in error["message"]
    assert_still_answers(server, images, expected)


def read_answer(s: socket.socket) -> bytes:
    """One HTTP answer from ``s``: its head and its Content-Length of body."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += s.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def raw_request(port: int, head: bytes, body: bytes = b"", *, wait: float = 10) -> bytes:
    """Send ``head`` and ``body`` on a new connection, then read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(head + body)
        return read_answer(s)


def test_declared_size_over_the_limit_is_refused_before_the_body(server, images, expected):
    size = MAX_UPLOAD_MB * 2**20 + 1
    head = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    answer = raw_request(server.port, head)  # no byte of the body is sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"upload_too_large" in answer and b"--max-upload-mb" in answer
    assert_still_answers(server, images, expected)


def test_a_client_that_sends_the_whole_body_first_gets_the_answer(server, images, expected):
    """As most clients do: the refused body is read and dropped, and the connection
    serves the next request."""
    too_large = {"content": b"\x00" * (MAX_UPLOAD_MB * 2**20 + 1),
                 "headers": {"content-type": "image/png"}}  # fmt: skip
    with httpx2.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/predict", **too_large)
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "upload_too_large"
        answer = client.post("/predict", files=files_of(images[:2]))
        assert answer.status_code == 200, answer.text
        assert_answers(answer.json()["predictions"], expected, [0, 1])


def test_a_body_declared_far_over_the_limit_closes_the_connection(server):
    size = 5 * MAX_UPLOAD_MB * 2**20
    head = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head)
        answer = read_answer(s)
        assert s.recv(1) == b""  # closed: the 5 MB are not waited for
    assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()


def test_streamed_body_over_the_limit_is_refused_while_streaming(server, images, expected):
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"\x00" * 2**16
    n = MAX_UPLOAD_MB * 2**20 // len(piece) + 1  # just over the limit; never finished
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(n))
    answer = raw_request(server.port, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"upload_too_large" in answer
    assert_still_answers(server, images, expected)


def test_bad_requests_do_not_affect_good_ones_in_flight(server, images, expected):
    """Good and bad requests at the same time: every good one is answered right."""
    bad = bad_requests(images)
    cases = ["not an image", "truncated", "decompression bomb", "empty file", "too many files"]
    results = {}

    def good(i):
        results[("good", i)] = httpx2.post(
            server.url + "/predict", files=files_of([images[i]]), timeout=30
        )

    def refused(case):
        results[case] = httpx2.post(server.url + "/predict", timeout=30, **bad[case][0])

    threads = [threading.Thread(target=good, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=refused, args=(case,)) for case in cases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        answer = results[("good", i)]
        assert answer.status_code == 200, answer.text
        assert_answers(answer.json()["predictions"], expected, [i])
    for case in cases:
        assert results[case].status_code == bad[case][1], results[case].text


def test_saliency_overlay(server, images):
    answer = httpx2.post(
        server.url + "/predict?saliency=true", files=files_of(images[:2]), timeout=60
    )
    assert answer.status_code == 200, answer.text
    for prediction in answer.json()["predictions"]:
        prefix = "data:image/png;base64,"
        assert prediction["saliency"].startswith(prefix)
        overlay = Image.open(io.BytesIO(base64.b64decode(prediction["saliency"][len(prefix) :])))
        assert overlay.size == (10, 10) and overlay.mode == "RGB"


# A second server: a token from the environment, and SIGTERM ------------------------


@pytest.fixture(scope="module")
def token_server(model_file, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve_log") / "token.log"
    server = Server(model_file, log=log, env={"SKLIMG_SERVE_TOKEN": "s3cret"})
    yield server
    server.stop()


def test_token(token_server, images):
    url = token_server.url
    assert httpx2.get(url + "/health").status_code == 200
    assert httpx2.get(url + "/").status_code == 200  # the page asks for the token
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        for answer in (
            httpx2.get(url + "/model", headers=headers),
            httpx2.post(url + "/predict", files=files_of(images[:1]), headers=headers),
        ):
            assert answer.status_code == 401, answer.text
            assert "Authorization: Bearer" in answer.json()["error"]["message"]
    good = {"Authorization": "Bearer s3cret"}
    assert httpx2.get(url + "/model", headers=good).status_code == 200
    answer = httpx2.post(url + "/predict", files=files_of(images[:1]), headers=good)
    assert answer.status_code == 200, answer.text


def test_sigterm_lets_the_request_in_flight_finish(token_server, images, expected):
    request = httpx2.Request(
        "POST",
        token_server.url + "/predict",
        files=files_of(images[:3]),
        headers={"Authorization": "Bearer s3cret", "Host": "x"},
    )
    body = request.read()
    head = "POST /predict HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in request.headers.items()
    )
    with socket.create_connection(("127.0.0.1", token_server.port), timeout=30) as s:
        # The headers and half the body: the request is in flight when SIGTERM arrives.
        s.sendall(head.encode() + b"\r\n" + body[: len(body) // 2])
        time.sleep(0.5)
        token_server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert token_server.process.poll() is None  # waiting for the request
        s.sendall(body[len(body) // 2 :])
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    status, _, payload = received.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200"), received[:300]
    assert_answers(json.loads(payload)["predictions"], expected, [0, 1, 2])
    # uvicorn exits as SIGTERM asks, once the requests in flight are answered.
    assert token_server.process.wait(timeout=30) == -signal.SIGTERM
    assert "Shutting down" in token_server.output()
    with pytest.raises(httpx2.TransportError):
        httpx2.get(token_server.url + "/health", timeout=2)


# In process: create_app ------------------------------------------------------------


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model, max_batch=4)) as client:
        yield client


def test_create_app_from_a_path(model_file, images, expected):
    with TestClient(create_app(model_file, device="cpu")) as client:
        answer = client.post("/predict", files=files_of(images[:2]))
        info = client.get("/model").json()
    assert_answers(answer.json()["predictions"], expected, [0, 1])
    assert info["file"] == model_file.name
    assert info["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()


def test_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in page.text and "://" not in page.text  # nothing fetched
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        answer = client.get("/static/" + name)
        assert answer.status_code == 200 and kind in answer.headers["content-type"]
        assert "://" not in answer.text


def test_unknown_routes_answer_json(client):
    answer = client.get("/nowhere")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "http_404"
    answer = client.get("/predict")
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "http_405"


def test_an_image_of_another_dtype_is_predicted_as_a_file_is(client, model, tmp_path):
    """16-bit files decode to float32: their batch is predicted apart from 8-bit ones."""
    X, _ = colour_images(2, seed=3)
    sixteen = tmp_path / "sixteen.png"
    Image.fromarray(X[0, ..., 0].astype(np.uint16) * 257).save(sixteen)
    eight = tmp_path / "eight.png"
    Image.fromarray(X[1]).save(eight)
    answer = client.post("/predict", files=files_of([sixteen, eight]))
    assert answer.status_code == 200, answer.text
    want = [model.predict_proba(prepare_images(model, [str(p)]))[0] for p in (sixteen, eight)]
    got = [list(p["probabilities"].values()) for p in answer.json()["predictions"]]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_a_batch_is_one_pass_of_the_network(client, model, images, expected):
    """The probabilities and the unknown scores of a batch come from one forward pass
    (two before: predict_proba, then unknown_score)."""
    import torch

    calls = []  # the first convolution's: one per batch through the network
    first = next(m for m in model.net_.module_.modules() if isinstance(m, torch.nn.Conv2d))
    hook = first.register_forward_hook(lambda *_: calls.append(1))
    try:
        answer = client.post("/predict", files=files_of(images[:2]))
    finally:
        hook.remove()
    assert answer.status_code == 200, answer.text
    assert_answers(answer.json()["predictions"], expected, [0, 1])
    assert len(calls) == 1


def test_uploads_never_touch_the_disk(client, images, expected, monkeypatch, tmp_path):
    """Uploads are decoded in memory: with no usable temporary folder (a full or
    read-only disk) the server still answers, and no upload is left in a file."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no such folder"))
    answer = client.post("/predict", files=files_of(images[:2]))
    assert answer.status_code == 200, answer.text
    assert_answers(answer.json()["predictions"], expected, [0, 1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_batch": 0}, "max_batch must be a positive integer; got 0"),
        ({"max_batch": 2.5}, "max_batch must be a positive integer"),
        ({"max_wait_ms": -1}, "max_wait_ms must be a number >= 0"),
        ({"max_upload_mb": 0}, "max_upload_mb must be a positive number"),
        ({"token": ""}, "token is empty"),
    ],
)
def test_create_app_refuses_bad_settings(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_app(model, **kwargs)


def test_create_app_refuses_what_is_not_a_classifier():
    with pytest.raises(TypeError, match="fitted classifier with predict_proba and classes_"):
        create_app(object())


def test_create_app_refuses_a_pickle_path(model, tmp_path):
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    with pytest.raises(ModelFileError, match="not a readable sklimg model file"):
        create_app(path)


def test_saliency_of_a_model_without_one(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = colour_images(30)
    flat = make_pipeline(
        FunctionTransformer(lambda x: np.asarray(x, float).reshape(len(x), -1)),
        LogisticRegression(max_iter=200),
    ).fit(X, y)
    with TestClient(create_app(flat)) as client:
        png = png_bytes(X[0])
        answer = client.post("/predict?saliency=true", files={"file": ("a.png", png)})
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "saliency_unavailable"
        answer = client.post("/predict", files={"file": ("a.png", png)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["label"] == flat.predict(X[:1])[0]


def test_mounted_in_another_application(model, images, expected):
    """Mounted apps get no lifespan events of their own: the batcher starts anyway."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    parent = Starlette(routes=[Mount("/classifier", create_app(model, token="t"))])
    token = {"Authorization": "Bearer t"}
    with TestClient(parent) as client:
        answer = client.post("/classifier/predict", files=files_of(images[:2]), headers=token)
        page = client.get("/classifier/")
        health = client.get("/classifier/health")
        refused = client.get("/classifier/model")
    assert answer.status_code == 200, answer.text
    assert_answers(answer.json()["predictions"], expected, [0, 1])
    assert page.status_code == 200 and 'src="static/app.js"' in page.text
    assert health.status_code == 200  # open under a prefix too
    assert refused.status_code == 401


def test_without_the_serve_extra(monkeypatch):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "starlette", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "sklimg.serving")
    with pytest.raises(ImportError, match=r'pip install "sklimg\[serve\]"'):
        importlib.import_module("sklimg.serving")


def test_the_same_application_served_twice(model, images, expected):
    """Its lifespan runs twice (a restart in one process): the batcher starts afresh."""
    app = create_app(model)
    for _ in range(2):
        with TestClient(app) as client:
            answer = client.post("/predict", files=files_of(images[:1]))
        assert_answers(answer.json()["predictions"], expected, [0])


FAULTS = """
import resource, threading
import torch, torchvision

network = torchvision.models.resnet18().eval()
images = torch.rand(8, 3, 224, 224)
faults = []

def batches():  # as the inference thread does
    with torch.inference_mode():
        for _ in range(6):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            network(images)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

thread = threading.Thread(target=batches)
thread.start()
thread.join()
print(sum(faults[-3:]))
"""


def test_the_tunables_spare_each_batch_its_page_faults():
    """Under sklimg.serving.GLIBC_TUNABLES, a thread's later forward passes reuse the
    memory of the first ones; with glibc's defaults each faults pages in again."""
    counts = {}
    for name, value in (("default", ""), ("tuned", GLIBC_TUNABLES)):
        out = subprocess.run(
            [sys.executable, "-c", FAULTS],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "GLIBC_TUNABLES": value},
        )
        counts[name] = int(out.stdout)
    assert counts["default"] > 5_000  # measured: about 30,000 (ResNet-18, 8 at 224x224)
    assert counts["tuned"] < counts["default"] // 10  # measured: 0 to 800


def test_sklimg_serve_runs_under_the_tunables(server):
    """The command restarted itself (the same process id) with the tunables set. glibc
    cuts the variable's text at its first ':' as it parses it, so /proc shows that
    much."""
    environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
    first = GLIBC_TUNABLES.split(":")[0]
    assert f"GLIBC_TUNABLES={first}".encode() in environ


def test_tunables_of_ones_own_are_kept(monkeypatch):
    from sklimg.cli.serve import _restart_with_kept_memory

    monkeypatch.setenv("GLIBC_TUNABLES", "")  # glibc's defaults, chosen: no restart
    assert _restart_with_kept_memory(GLIBC_TUNABLES) is None
