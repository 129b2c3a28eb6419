"""The ``sklimg`` command as a whole: the entry point, help, version, and errors on
one line for a wrong command line."""

import argparse

import pytest

import sklimg
from sklimg.cli import CommandError, build_parser, main
from tests.cli.cli_helpers import (
    CLASSES,
    assert_one_line_error,
    run,
    run_module,
)


def test_entry_point_trains_in_a_new_process(data, tmp_path):
    model = tmp_path / "m.sklimg"
    # Default workers: images are decoded in a DataLoader worker process.
    args = ["--backbone", "test_cnn", "--epochs", "1", "--seed", "0", "-q", "--out", model]
    done = run_module("train", data[0], *args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "Saved the model to" in done.stdout
    assert sklimg.load(model, device="cpu").classes_.tolist() == list(CLASSES)


def test_entry_point_reports_errors_on_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model\n")
    done = run_module("predict", "notes.txt", "x.png", cwd=tmp_path)
    assert_one_line_error(done.returncode, done.stdout, done.stderr, "x.png' does not exist")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **action.choices}


@pytest.mark.parametrize("command", list(subcommands()))
def test_help_documents_every_option_with_its_default_and_examples(command):
    parser = subcommands()[command]
    code, out, _ = run(*([command] if command else []), "--help")
    assert code == 0
    assert "examples:" in out and f"sklimg {command}".strip() in out.split("examples:")[1]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert all(name in out for name in action.choices)
            continue
        names = action.option_strings or [action.metavar]
        assert all(name in out for name in names), names
        if action.option_strings and action.dest not in ("help", "version"):
            assert "(default: " in action.help, action.dest


def test_version():
    code, out, _ = run("--version")
    assert (code, out) == (0, f"sklimg {sklimg.__version__}\n")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["train", "d", "--epochs", "ten"], "--epochs: expected a positive integer, got 'ten'"),
        (["train", "d", "--epochs", "0"], "got '0'"),
        (["train", "d", "--lr", "-1"], "--lr: expected a positive number or 'find'"),
        (["train", "d", "--lr", "fast"], "got 'fast'"),
        (["train", "d", "--validation-fraction", "1"], "strictly between 0 and 1"),
        (["train", "d", "--image-size", "64x"], "HEIGHTxWIDTH"),
        (["train", "d", "--image-size", "100000"], "at most 100,000,000"),
        (["train", "d", "--augment", "wild"], "invalid choice: 'wild'"),
        (["train", "d", "--mix", "blend"], "invalid choice: 'blend'"),
        (["train", "d", "--mix-alpha", "0"], "--mix-alpha: expected a positive number"),
        (["train", "d", "--ema-decay", "1"], "--ema-decay: expected a fraction strictly"),
        (["train", "d", "--gradient-accumulation-steps", "0"], "got '0'"),
        (["train", "d", "--erasing", "0"], "--erasing: expected a probability above 0"),
        (["train", "d", "--erasing", "1.5"], "at most 1 (e.g. 0.25), got '1.5'"),
        (["train", "d", "-v", "-q"], "not allowed with argument"),
        (["predict", "m.sklimg"], "required: IMAGE_OR_DIR"),
        (["predict", "m", "x.png", "--format", "xml"], "invalid choice: 'xml'"),
        (["fit", "d"], "invalid choice: 'fit'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_command_line_fails_with_one_line_and_status_2(args, match):
    code, out, err = run(*args)
    assert_one_line_error(code, out, err, match, status=2)
    assert "--help' )" not in err and "--help')" in err


def test_debug_shows_the_error_itself(bad):
    with pytest.raises(CommandError, match="text file"):
        main(["predict", str(bad / "notes.txt"), str(bad / "flat"), "--debug"])
    with pytest.raises(CommandError, match="text file"):
        main(["--debug", "predict", str(bad / "notes.txt"), str(bad / "flat")])
