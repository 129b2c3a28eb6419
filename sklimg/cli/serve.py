"""``sklimg serve MODEL``: predictions over HTTP, and a page to try the model."""

from __future__ import annotations

import argparse
import os
import platform
import sys

from sklimg.cli._commands import Command, CommandError, register
from sklimg.cli._models import load_model, model_flags, set_tta
from sklimg.cli._types import fill, positive_float, positive_int

__all__ = ["add_parser", "run"]

#: Where ``--token`` is read from when it is not given (a flag shows in ``ps``).
TOKEN_VARIABLE = "SKLIMG_SERVE_TOKEN"


def add_parser(commands, parents: list) -> argparse.ArgumentParser:
    """The ``serve`` command's options."""
    parser = commands.add_parser(
        "serve",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="serve a model's predictions over HTTP, with a page to try it",
        description=fill(
            "Answer POST /predict with the label and probabilities of each image sent "
            "(multipart fields named 'file', or a raw image/* body), GET /model with what "
            "the model is, GET /health, and GET / with a page where you drop images and "
            "see their labels. Requests that arrive together are predicted in one batch. "
            "Listens on 127.0.0.1 (this machine only) unless --host says otherwise; put "
            "it behind a reverse proxy for TLS. Ctrl-C or SIGTERM stops it once the "
            "requests in flight are answered. On Linux it restarts itself once as it "
            "starts, with GLIBC_TUNABLES set so that each batch reuses the memory the last "
            "one freed (set GLIBC_TUNABLES, even empty, to keep your own). Needs the serve "
            'extra: pip install "sklimg[serve]".'
        ),
        epilog=(
            "examples:\n"
            "  sklimg serve model.sklimg\n"
            "  curl -F file=@photo.jpg http://127.0.0.1:8000/predict\n"
            f"  {TOKEN_VARIABLE}=secret sklimg serve model.sklimg --host 0.0.0.0 --port 8080"
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="model file saved by 'sklimg train'")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (default: 127.0.0.1)",
    )
    parser.add_argument(
        "--port", type=_port, default=8000, help="TCP port to listen on (default: 8000)"
    )
    parser.add_argument(
        "--max-batch",
        type=positive_int,
        default=64,
        metavar="N",
        help="most images in one predict_proba call, and in one request (default: 64)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=_non_negative_float,
        default=10.0,
        metavar="MS",
        help=(
            "how long a batch waits for the next request, 4 times as long in all at most "
            "(default: 10)"
        ),
    )
    parser.add_argument(
        "--max-upload-mb",
        type=positive_float,
        default=20.0,
        metavar="MB",
        help="largest request body, refused as it streams in (default: 20)",
    )
    parser.add_argument(
        "--token",
        help=(
            "require 'Authorization: Bearer TOKEN' on every request but GET /health and "
            f"the page's files (default: ${TOKEN_VARIABLE}, else no token)"
        ),
    )
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from sklimg.serving import GLIBC_TUNABLES, create_app
    except ImportError as exc:
        raise CommandError(
            f"sklimg serve needs the serve extra ({exc.name} is not installed): pip install "
            f'"sklimg[serve]"'
        ) from None
    token = args.token if args.token is not None else os.environ.get(TOKEN_VARIABLE)
    if token is not None and not token.strip():
        where = "--token" if args.token is not None else f"${TOKEN_VARIABLE}"
        raise CommandError(f"{where} is empty; give a secret, or leave it out for no token.")
    if args.command_line:
        # Before the model is loaded; not for a call from Python, whose process it is.
        _restart_with_kept_memory(GLIBC_TUNABLES)
    model = load_model(
        args.model, allow_pickle=args.allow_pickle, device=args.device, command=args.command
    )
    set_tta(model, args.tta, args.model)
    app = create_app(
        model,
        model_path=args.model,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_upload_mb=args.max_upload_mb,
        token=token,
    )
    # uvicorn handles SIGINT and SIGTERM: it stops accepting connections and waits for
    # the requests in flight, then runs the app's shutdown (the batcher's last batch).
    server = uvicorn.Server(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="info", access_log=True)
    )
    server.run()
    return 0 if server.started else 1


def _restart_with_kept_memory(tunables: str) -> None:
    """Replace this process with the same command line, glibc's malloc set by
    ``tunables`` to keep each batch's freed memory for the next (see
    sklimg.serving._memory: it must be set when the process starts).

    Returns, doing nothing, where the C library is not glibc or the environment sets
    GLIBC_TUNABLES already: after the restart, or when the user chose their own (an
    empty value keeps glibc's defaults). Otherwise it does not return; the process
    keeps its id, so a supervisor's signals still reach it.
    """
    if platform.libc_ver()[0] != "glibc" or "GLIBC_TUNABLES" in os.environ:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, {**os.environ, "GLIBC_TUNABLES": tunables})


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port, 0 to 65535, got {text!r}")
    return int(text)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


register(Command("serve", 4, add_parser, run, loads_models=True, flags=model_flags))
