"""``sklimg serve``: what it refuses before it starts listening, in the command's
terms, and a pickled model served with --allow-pickle."""

import httpx2
import joblib
import pytest

import sklimg
from tests.cli.cli_helpers import assert_one_line_error, run
from tests.serving_helpers import Server, files_of_paths


def test_refuses_a_missing_model(tmp_path):
    code, out, err = run("serve", tmp_path / "none.sklimg")
    assert_one_line_error(code, out, err, "none.sklimg' does not exist")


def test_refuses_a_pickle_without_allow_pickle(trained, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(sklimg.load(trained[0], device="cpu"), path)
    code, out, err = run("serve", path)
    assert_one_line_error(code, out, err, "Pass --allow-pickle if you trust it")


@pytest.mark.parametrize(
    ("args", "env", "match"),
    [
        (["--token", " "], {}, "--token is empty"),
        ([], {"SKLIMG_SERVE_TOKEN": ""}, "$SKLIMG_SERVE_TOKEN is empty"),
    ],
)
def test_refuses_an_empty_token(trained, monkeypatch, args, env, match):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run("serve", trained[0], *args)
    assert_one_line_error(code, out, err, match)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--port", "70000"], "--port: expected a TCP port, 0 to 65535, got '70000'"),
        (["--max-batch", "0"], "--max-batch: expected a positive integer, got '0'"),
        (["--max-wait-ms", "-1"], "--max-wait-ms: expected a number >= 0, got '-1'"),
        (["--max-upload-mb", "0"], "--max-upload-mb: expected a positive number"),
    ],
)
def test_refuses_bad_settings(args, match):
    code, out, err = run("serve", "model.sklimg", *args)
    assert_one_line_error(code, out, err, match, status=2)


def test_serves_a_pickle_with_allow_pickle(trained, data, tmp_path):
    model = sklimg.load(trained[0], device="cpu")
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    images = sorted((data[1] / "red").glob("*.png"))[:2]
    server = Server(path, "--allow-pickle", log=tmp_path / "server.log")
    try:
        answer = httpx2.post(server.url + "/predict", files=files_of_paths(images), timeout=30)
        info = httpx2.get(server.url + "/model").json()
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    assert [p["label"] for p in answer.json()["predictions"]] == ["red", "red"]
    assert info["file"] == "model.joblib" and len(info["sha256"]) == 64


def test_without_the_serve_extra(trained, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    code, out, err = run("serve", trained[0])
    assert_one_line_error(code, out, err, 'pip install "sklimg[serve]"')
