"""``sklimg serve``: images per second and latency with 1, 8 and 32 concurrent clients,
beside offline ``predict_proba`` on the same images in the same run.

A ``resnet18`` with random weights (``pretrained=False``), fitted for one epoch on 64
random 64x64 RGB images and saved in the safe format, is served by ``python -m sklimg
serve`` (uvicorn, ``--max-batch 64``, ``--max-wait-ms`` as given, 10 by default) on a
loopback port. The clients each send one PNG per request, as soon as their last answer
came, until ``--requests`` are answered or ``--seconds`` have passed; they run in one
asyncio loop of this process, on the same cores as the server, so they are kept cheap: each
holds one keep-alive HTTP/1.1 connection and writes requests built beforehand (with
httpx2, as multipart forms), as a load generator such as wrk does; ``client_cpu_ms`` is
their CPU time per request. One more run at 32 clients uses httpx2's ``AsyncClient``
instead, for a client as an application would write it. Offline: ``predict_proba`` on
the same images, decoded, in one call, and in calls of 32 (the largest batch 32 clients
of one image each can fill), the best of 3 runs before the server starts and 3 after it
stops; ``vs_offline`` divides by the faster of the two. Every answer is checked against
the offline probabilities. From the server's ``GET /health`` counters: ``mean_batch``,
the images per ``predict_proba`` call, and ``model_busy``, the share of the wall time
the model spent predicting. A last run (httpx2) mixes bad requests among 32 clients'
good ones (a non-image, a truncated PNG, a decompression bomb, a wrong content type, an
empty body, too many files, a body over ``--max-upload-mb``): it counts 5xx answers,
bad requests not refused with a 4xx, and wrong answers; all must be 0.

    python benchmarks/serving.py [--quick] [--backbone resnet18] [--size 64] [--max-wait-ms 10]
"""

import asyncio
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx2
import numpy as np
from _common import best_of, parse_args, report
from PIL import Image

import sklimg
from sklimg import ImageClassifier
from sklimg.io import read_image

args = parse_args(
    __doc__,
    lambda parser: (
        parser.add_argument("--backbone", default="resnet18", help="(default: resnet18)"),
        parser.add_argument("--size", type=int, default=64, help="image side (default: 64)"),
        parser.add_argument(
            "--requests", type=int, default=640, help="requests per run, at most (default: 640)"
        ),
        parser.add_argument(
            "--max-wait-ms", default="10", help="the server's --max-wait-ms (default: 10)"
        ),
        parser.add_argument(
            "--seconds", type=float, default=30, help="seconds per run, at most (default: 30)"
        ),
    ),
)
backbone, size = ("test_cnn", 16) if args.quick else (args.backbone, args.size)
n_requests = 32 if args.quick else args.requests
CLIENTS = (1, 8, 32)
ROOT = Path(__file__).resolve().parents[1]

folder = Path(tempfile.mkdtemp(prefix="sklimg-serving-bench-"))
rng = np.random.default_rng(0)
X = (rng.random((256, size, size, 3)) * 255).astype(np.uint8)
y = np.arange(len(X)) % 4
clf = ImageClassifier(backbone, max_epochs=1, batch_size=32, random_state=0, pretrained=False)
model_file = sklimg.save(clf.fit(X[:64], y[:64]), folder / "model.sklimg")
pngs = []
for image in X:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    pngs.append(buffer.getvalue())
(folder / "0.png").write_bytes(pngs[0])
assert (read_image(folder / "0.png") == X[0]).all()  # PNG keeps the pixels exactly

# Offline, in this process: the same model file, the same images.
model = sklimg.load(model_file, device="cpu")
model.predict_proba(X[:32])  # warm up
offline = np.asarray(model.predict_proba(X))


def offline_rates() -> tuple[float, float]:
    """Images per second of predict_proba: all images in one call, and in calls of 32;
    the best of 3 each (the least disturbed by other work on the machine)."""
    one_call = best_of(3, lambda: model.predict_proba(X))
    calls_of_32 = best_of(
        3, lambda: [model.predict_proba(X[i : i + 32]) for i in range(0, len(X), 32)]
    )
    return len(X) / one_call, len(X) / calls_of_32


before = offline_rates()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
url = f"http://127.0.0.1:{port}"
log = open(folder / "server.log", "wb")  # open for the server's lifetime
server = subprocess.Popen(
    [sys.executable, "-m", "sklimg", "serve", str(model_file), "--port", str(port),
     "--device", "cpu", "--max-upload-mb", "1", "--max-wait-ms", args.max_wait_ms],
    stdout=log, stderr=subprocess.STDOUT,
    env={**os.environ, "PYTHONPATH": str(ROOT)},
)  # fmt: skip
deadline = time.monotonic() + 120
while True:
    try:
        if httpx2.get(url + "/health", timeout=1).status_code == 200:
            break
    except httpx2.TransportError:
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit((folder / "server.log").read_text()) from None
    time.sleep(0.2)


def bomb_png() -> bytes:
    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 12_000, 12_000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


buffer = io.BytesIO()
Image.new("RGB", (2, 2)).save(buffer, format="PNG")
tiny_png = buffer.getvalue()
BAD = [
    {"files": [("file", ("notes.png", b"not pixels"))]},
    {"files": [("file", ("cut.png", pngs[0][: len(pngs[0]) // 2]))]},
    {"files": [("file", ("bomb.png", bomb_png()))]},
    {"content": pngs[0], "headers": {"content-type": "application/octet-stream"}},
    {"content": b"", "headers": {"content-type": "image/png"}},
    {"files": [("file", ("x.png", tiny_png))] * 65},  # small: too many, not too large
    {"content": b"\x00" * (2**20 + 1), "headers": {"content-type": "image/png"}},
]


def raw_request(**kwargs) -> bytes:
    """A POST /predict built by httpx2 (its multipart encoding), as the bytes on the wire."""
    request = httpx2.Request("POST", url + "/predict", **kwargs)
    body = request.read()
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    return f"POST /predict HTTP/1.1\r\n{head}\r\n".encode() + body


RAW = [raw_request(files=[("file", (f"{i}.png", png))]) for i, png in enumerate(pngs)]


async def raw_post(connection, data: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; its status and body."""
    reader, writer = connection
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return status, await reader.readexactly(length)


async def run(
    clients: int, requests: int, seconds: float, bad_every: int = 0, client: str = "raw"
) -> dict:
    """``clients`` concurrent clients; every ``bad_every``-th request a bad one (httpx2)."""
    latencies, counts = [], {"5xx": 0, "bad_not_4xx": 0, "wrong": 0, "good": 0, "bad": 0}
    next_request = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=60) as http:

        async def one_client():
            nonlocal next_request
            connection = None
            if client == "raw":
                connection = await asyncio.open_connection("127.0.0.1", port)
            while next_request < requests and time.perf_counter() < stop_at:
                i = next_request
                next_request += 1
                bad = bad_every and i % bad_every == bad_every - 1
                start = time.perf_counter()
                if connection is not None:
                    status, body = await raw_post(connection, RAW[i % len(pngs)])
                else:
                    kwargs = BAD[(i // bad_every) % len(BAD)] if bad else {
                        "files": [("file", (f"{i}.png", pngs[i % len(pngs)]))]
                    }  # fmt: skip
                    answer = await http.post("/predict", **kwargs)
                    status, body = answer.status_code, answer.content
                elapsed = time.perf_counter() - start
                counts["5xx"] += status >= 500
                if bad:
                    counts["bad"] += 1
                    counts["bad_not_4xx"] += not 400 <= status < 500
                    continue
                counts["good"] += 1
                latencies.append(elapsed)
                got = list(json.loads(body)["predictions"][0]["probabilities"].values())
                counts["wrong"] += not np.allclose(got, offline[i % len(pngs)], atol=1e-5)
            if connection is not None:
                connection[1].close()
                await connection[1].wait_closed()

        health = (await http.get("/health")).json()
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        after = (await http.get("/health")).json()
    latencies = np.array(latencies)
    return {
        "clients": clients if client == "raw" else f"{clients}, httpx2",
        "requests": counts["good"] + counts["bad"],
        "bad_requests": counts["bad"],
        "images_per_s": counts["good"] / wall,
        "vs_offline": None,  # once the offline rates are known
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        # Images per predict_proba call, and the model's share of the wall time, from
        # the server's counters (GET /health).
        "mean_batch": (after["images"] - health["images"])
        / max(1, after["batches"] - health["batches"]),
        "model_busy": (after["predict_seconds"] - health["predict_seconds"]) / wall,
        "client_cpu_ms": 1000 * cpu / max(1, counts["good"] + counts["bad"]),
        "answers_5xx": counts["5xx"],
        "bad_not_4xx": counts["bad_not_4xx"],
        "wrong_answers": counts["wrong"],
    }


rows = []
try:
    asyncio.run(run(4, 8 if args.quick else 32, 10))  # warm up: the first batches
    for clients in CLIENTS:
        requests = n_requests // 4 if clients == 1 else n_requests
        rows.append(asyncio.run(run(clients, requests, args.seconds)))
    rows.append(asyncio.run(run(32, n_requests, args.seconds, client="httpx2")))
    mixed = asyncio.run(run(32, n_requests, args.seconds, bad_every=4, client="httpx2"))
    rows.append({**mixed, "clients": "32, httpx2, 1 in 4 bad"})
finally:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    log.close()
# Offline again, after the server runs: the best of before and after is the baseline.
after = offline_rates()
offline_ips, offline32_ips = max(before[0], after[0]), max(before[1], after[1])
best = max(offline_ips, offline32_ips)  # per image, one call should win; on a busy machine
for row in rows:
    row["vs_offline"] = row["images_per_s"] / best
rows[:0] = [
    {"clients": "offline, one call", "requests": "-", "bad_requests": "-",
     "images_per_s": offline_ips, "vs_offline": offline_ips / best, "p50_ms": "-", "p99_ms": "-",
     "mean_batch": len(X), "model_busy": "-", "client_cpu_ms": "-", "answers_5xx": "-",
     "bad_not_4xx": "-", "wrong_answers": "-"},
    {"clients": "offline, calls of 32", "requests": "-", "bad_requests": "-",
     "images_per_s": offline32_ips, "vs_offline": offline32_ips / best, "p50_ms": "-",
     "p99_ms": "-", "mean_batch": 32, "model_busy": "-", "client_cpu_ms": "-",
     "answers_5xx": "-", "bad_not_4xx": "-", "wrong_answers": "-"},
]  # fmt: skip
for row in rows:
    row["model"] = f"{backbone} {size}x{size}"
    row["max_wait_ms"] = args.max_wait_ms
report("serving", rows)
