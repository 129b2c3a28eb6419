"""``sklimg backbones``: the registry as a table and as JSON."""

import json

import pytest

import sklimg
from tests.cli.cli_helpers import assert_one_line_error, run


def test_backbones_table_and_json():
    code, out, _ = run("backbones")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["name", "kind"]
    resnet18 = next(line for line in lines if line.startswith("resnet18 "))
    assert "224x224" in resnet18 and "512" in resnet18 and "ImageNet (torchvision)" in resnet18

    code, out, _ = run("backbones", "--pattern", "*cnn*", "--format", "json")
    assert code == 0
    records = json.loads(out)
    assert [r["name"] for r in records] == ["cnn_small", "test_cnn"]
    assert records[1] == {
        "name": "test_cnn",
        "kind": "deep",
        "input_size": None,
        "feature_dim": 16,
        "pretrained_weights": None,
        "description": sklimg.backbones.get_backbone("test_cnn").description,
    }


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["backbones", "--pattern", "nothing*"], "No backbone name matches 'nothing*'"),
    ],
)
def test_bad_input_fails_with_one_line(bad, args, match):
    code, out, err = run(*(a.format(bad=bad) for a in args))
    assert_one_line_error(code, out, err, match.format(bad=bad))
    assert out == ""
