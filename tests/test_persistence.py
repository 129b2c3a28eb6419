"""Saving and loading: small pickles that load anywhere, and a safe format that never
unpickles and rejects modified files."""

import io
import json
import pickle
import warnings
import zipfile

import joblib
import numpy as np
import pytest

import sklimg
from sklimg import ImageClassifier
from sklimg.exceptions import ModelFileError, VersionMismatchWarning
from sklimg.preprocessing import Augment

FAST = dict(backbone="test_cnn", max_epochs=2, random_state=0)


@pytest.fixture(scope="module")
def fitted(small_digits):
    X, y = small_digits
    names = np.array([f"digit-{d}" for d in range(10)])
    return ImageClassifier(**FAST, validation_fraction=0.2).fit(X, names[y]), X


def test_safe_round_trip_gives_identical_probabilities(fitted, tmp_path):
    clf, X = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")
    # On the device it was trained on: another device computes with other kernels.
    loaded = sklimg.load(path, device=str(clf.net_.device))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.get_params() == {**clf.get_params(), "device": str(clf.net_.device)}
    assert loaded.input_shape_ == clf.input_shape_ and loaded.finetune_ == clf.finetune_
    assert len(loaded.history_) == len(clf.history_)
    assert loaded.history_[-1, "valid_acc"] == clf.history_[-1, "valid_acc"]


def test_safe_format_holds_json_and_tensors_only(fitted, tmp_path):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["sklimg.json", "weights.safetensors"]
        config = json.loads(archive.read("sklimg.json"))
    assert config["architecture"]["backbone"] == "test_cnn"
    assert config["classes"][0] == "digit-0"


def _rewrite(path, member, transform):
    with zipfile.ZipFile(path) as archive:
        contents = {n: archive.read(n) for n in archive.namelist()}
    contents[member] = transform(contents[member])
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def _edit_config(**changes):
    def transform(raw):
        config = json.loads(raw)
        config.update(changes)
        return json.dumps(config).encode()

    return transform


def _reseal(path):
    """Record a digest that matches the edited contents, as a tool writing files by
    hand would: what is left to catch is the content itself."""
    from sklimg.persistence import _digest

    with zipfile.ZipFile(path) as archive:
        weights = archive.read("weights.safetensors")
    _rewrite(
        path, "sklimg.json", lambda raw: _edit_config(sha256=_digest(json.loads(raw), weights))(raw)
    )


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        (lambda p: _rewrite(p, "weights.safetensors", lambda b: b[:-8] + b"\x00" * 8), "modified"),
        (lambda p: _rewrite(p, "sklimg.json", _edit_config(classes=["digit-9"] * 10)), "modified"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a readable"),
        (lambda p: p.write_bytes(b"\x80\x04K\x01."), "not a readable"),  # a pickle
        (lambda p: _rewrite(p, "sklimg.json", lambda b: b"{not json"), "not valid JSON"),
        (lambda p: _rewrite(p, "sklimg.json", _edit_config(format_version=99)), "version 99"),
        (
            lambda p: _rewrite(p, "sklimg.json", _edit_config(estimator="os.system")),
            "unknown estimator",
        ),
        (
            lambda p: _rewrite(p, "sklimg.json", _edit_config(label_type="function")),
            "unknown label",
        ),
        (lambda p: _rewrite(p, "sklimg.json", _edit_config(format="zip")), "not an sklimg model"),
    ],
    ids=[
        "weights-changed",
        "classes-changed",
        "truncated",
        "pickle",
        "bad-json",
        "version",
        "type",
        "label",
        "format",
    ],
)
def test_tampered_files_fail_without_running_anything(fitted, tmp_path, tamper, match, monkeypatch):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")
    tamper(path)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(ModelFileError, match=match):
        sklimg.load(path)


def test_unknown_backbone_and_parameters_are_refused(fitted, tmp_path):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")

    def architecture(raw):
        config = json.loads(raw)
        config["architecture"]["backbone"] = "evil_net"
        return json.dumps(config).encode()

    _rewrite(path, "sklimg.json", architecture)
    _reseal(path)
    with pytest.raises(ModelFileError, match="backbone sklimg does not know"):
        sklimg.load(path)
    path = sklimg.save(clf, tmp_path / "model2.sklimg")
    _rewrite(path, "sklimg.json", _edit_config(params={"exec": "rm -rf /"}))
    _reseal(path)
    with pytest.raises(ModelFileError, match=r"unknown parameters \['exec'\]"):
        sklimg.load(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        sklimg.load(tmp_path / "missing.sklimg")


@pytest.mark.parametrize(
    "changes",
    [
        {"fitted": {"input_shape_": [8, 8], "input_size_": [8, 8], "finetune_": "full"}},
        {"params": {"lr": "abc"}},
        {"architecture": {"backbone": "test_cnn"}},
        {"metadata": ["not", "a", "mapping"]},
        {"params": {"lr": {"__sklimg_type__": "eval", "value": "1"}}},
        {"params": {"class_weight": {"__sklimg_type__": "dict", "items": [[[0], 1]]}}},
        {"classes_dtype": "<U1"},  # would cut "digit-0" to "d"
        {"classes_dtype": "|i1"},
    ],
    ids=[
        "shape",
        "param-value",
        "architecture",
        "metadata",
        "param-tag",
        "list-key",
        "classes-truncated",
        "classes-not-ints",
    ],
)
def test_consistent_digest_but_unusable_configuration(fitted, tmp_path, changes):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")
    _rewrite(path, "sklimg.json", _edit_config(**changes))
    _reseal(path)
    with pytest.raises(ModelFileError, match=r"sklimg\.json does not describe|metadata is not"):
        sklimg.load(path)


def test_what_the_safe_format_cannot_hold(small_digits, tmp_path):
    X, y = small_digits
    import torch

    as_class = ImageClassifier(**FAST, optimizer=torch.optim.RMSprop).fit(X, y)
    with pytest.raises(ValueError, match="optimizer=.*cannot store without pickle"):
        sklimg.save(as_class, tmp_path / "b.sklimg")
    # Training-only settings: the message says they can go before saving.
    from skorch.callbacks import EpochTimer

    timed = ImageClassifier(**FAST, callbacks=[EpochTimer()]).fit(X, y)
    with pytest.raises(ValueError, match=r"model.set_params\(callbacks=None\) before saving"):
        sklimg.save(timed, tmp_path / "b.sklimg")
    sklimg.save(timed.set_params(callbacks=None), tmp_path / "b.sklimg")
    with pytest.raises(sklimg.exceptions.NotFittedError):
        sklimg.save(ImageClassifier(), tmp_path / "c.sklimg")


def test_pickles_are_small_and_predict_the_same(fitted):
    clf, X = fitted
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    n_weights = sum(p.numel() for p in clf.net_.module_.parameters()) * 4
    # Weights, buffers and bookkeeping: no optimizer moments (2x the weights), no
    # second copy of the network held by callbacks.
    assert len(buffer.getvalue()) < 2 * n_weights + 200_000
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert len(clf.net_.optimizer_.state) > 0  # the live model keeps its optimizer


def test_pickled_model_continues_training(small_digits):
    X, y = small_digits
    clf = ImageClassifier(**FAST, warm_start=True).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    loaded.fit(X, y)
    assert len(loaded.history_) == 4


def test_version_mismatch_warns_on_load(fitted):
    clf, _ = fitted
    state = clf.__getstate__()
    state["_sklimg_versions"] = {"sklimg": "0.0.1", "torch": "2.0.0"}
    blank = ImageClassifier.__new__(ImageClassifier)
    with pytest.warns(VersionMismatchWarning, match=r"saved with sklimg 0.0.1 \(now"):
        blank.__setstate__(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(clf))  # same versions: silent


def test_metadata_travels_with_the_model(fitted, tmp_path):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "m.sklimg", metadata={"image_size": [8, 8]})
    assert sklimg.load(path).sklimg_metadata_ == {"image_size": [8, 8]}
    assert sklimg.load(sklimg.save(clf, tmp_path / "n.sklimg")).sklimg_metadata_ == {}
    with pytest.raises(ValueError, match="metadata must hold only JSON values"):
        sklimg.save(clf, tmp_path / "o.sklimg", metadata={"f": object()})


def test_loaded_model_predicts_in_the_precision_it_was_saved_with(fitted, tmp_path):
    from sklearn.base import clone

    clf, _ = fitted
    amp = clone(clf).set_params(amp=True)  # what a fit on a GPU would save
    amp.__dict__.update({k: v for k, v in clf.__dict__.items() if k.endswith("_")})
    assert sklimg.load(sklimg.save(amp, tmp_path / "amp.sklimg")).net_.amp is True
    assert sklimg.load(sklimg.save(clf, tmp_path / "fp32.sklimg")).net_.amp is False


def test_deeply_nested_configurations_are_refused_as_model_files(fitted, tmp_path):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "m.sklimg")
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("sklimg.json"))
        weights = archive.read("weights.safetensors")
    nested: list = []
    for _ in range(700):  # deeper than _decode recurses, shallower than json's limit
        nested = [nested]
    config["params"]["backbone_kwargs"] = {"deep": nested}
    config["sha256"] = sklimg.persistence._digest(config, weights)
    for raw in ("[" * 100_000 + "]" * 100_000, json.dumps(config)):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("sklimg.json", raw)
            archive.writestr("weights.safetensors", weights)
        with pytest.raises(ModelFileError):
            sklimg.load(path)


def test_the_load_device_is_where_training_goes_on(fitted, small_digits, tmp_path):
    """A model saved with device='cuda' and loaded with device='cpu' keeps training on
    the CPU, instead of failing on (or moving to) the device it was saved with."""
    from sklimg.exceptions import DeviceError

    clf, _ = fitted
    X, y = small_digits
    names = np.array([f"digit-{d}" for d in range(10)])
    path = sklimg.save(_refitted(clf, device="cuda"), tmp_path / "m.sklimg")
    assert sklimg.load(path, device="cpu").get_params()["device"] == "cpu"
    import torch

    # A torch.device too, kept as its name: the model saves again.
    as_device = sklimg.load(path, device=torch.device("cpu"))
    assert as_device.device == "cpu"
    sklimg.save(as_device, tmp_path / "again.sklimg")
    loaded = sklimg.load(path, device="cpu").partial_fit(X, names[y])
    assert str(loaded.net_.device) == "cpu"
    assert all(p.device.type == "cpu" for p in loaded.net_.module_.parameters())
    # "auto" keeps the saved parameter: without CUDA (the suite hides it), that refuses
    # to train, and says why.
    with pytest.raises(DeviceError, match="CUDA is not available"):
        sklimg.load(path).partial_fit(X, names[y])


def _refitted(clf, **params):
    """``clf`` with other parameters and the same fitted state, without training."""
    from sklearn.base import clone

    model = clone(clf).set_params(**params)
    model.__dict__.update({k: v for k, v in clf.__dict__.items() if k.endswith("_")})
    return model


def test_save_takes_only_an_image_classifier(fitted, small_digits, tmp_path):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    clf, _ = fitted
    X, y = small_digits
    pipeline = make_pipeline(FunctionTransformer(), clf)
    with pytest.raises(
        ValueError,
        match=r"step 'functiontransformer' is a FunctionTransformer.*image steps.*joblib\.dump",
    ):
        sklimg.save(pipeline, tmp_path / "p.sklimg")
    dummy = DummyClassifier().fit(X.reshape(len(X), -1), y)
    with pytest.raises(ValueError, match=r"ImageClassifier, got DummyClassifier.*joblib\.dump"):
        sklimg.save(dummy, tmp_path / "d.sklimg")

    class MyClassifier(ImageClassifier):
        pass

    subclass = MyClassifier.__new__(MyClassifier)
    subclass.__dict__.update(clf.__dict__)
    with pytest.raises(ValueError, match=r"rebuilds an ImageClassifier, not.*MyClassifier"):
        sklimg.save(subclass, tmp_path / "s.sklimg")
    assert list(tmp_path.iterdir()) == []


def _image_pipeline(small_digits):
    from sklearn.pipeline import Pipeline

    from sklimg.preprocessing import CenterCrop, Normalize, Resize, ToRGB

    X, y = small_digits
    pipeline = Pipeline(
        [
            ("resize", Resize((12, 10))),
            ("crop", CenterCrop(10)),
            ("rgb", ToRGB()),
            ("skip", "passthrough"),
            ("normalize", Normalize("fit")),
            ("augment", Augment("light", hflip=0.0)),
            ("classify", ImageClassifier(**FAST)),
        ],
        verbose=False,
    )
    return pipeline.fit(X, y), X


def test_pipelines_of_image_steps_are_saved_whole(small_digits, tmp_path):
    pipeline, X = _image_pipeline(small_digits)
    path = sklimg.save(pipeline, tmp_path / "p.sklimg", metadata={"data": "digits"})
    loaded = sklimg.load(path, device="cpu")
    assert [name for name, _ in loaded.steps] == [name for name, _ in pipeline.steps]
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    # Normalize's learnt statistics are stored, not learnt again.
    np.testing.assert_array_equal(loaded["normalize"].std_, pipeline["normalize"].std_)
    assert loaded["resize"].get_params() == pipeline["resize"].get_params()
    assert loaded[-1].sklimg_metadata_ == {"data": "digits"}


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: p["steps"][0].update({"class": "os.system"}), "KeyError"),
        (lambda p: p["steps"][4]["fitted"].update({"std_": [0.0, 1.0, 1.0]}), "Normalize"),
        (lambda p: p["steps"][0]["params"].update({"size": "big"}), "Resize"),
        (lambda p: p["params"].update({"verbose": "yes"}), "verbose"),
    ],
    ids=["class", "zero-std", "param", "verbose"],
)
def test_pipelines_from_a_file_are_checked(small_digits, tmp_path, edit, match):
    pipeline, _ = _image_pipeline(small_digits)
    path = sklimg.save(pipeline, tmp_path / "p.sklimg")

    def edited(raw):
        config = json.loads(raw)
        edit(config["pipeline"])
        return json.dumps(config).encode()

    _rewrite(path, "sklimg.json", edited)
    _reseal(path)
    with pytest.raises(ModelFileError, match=rf"its pipeline does not describe.*{match}"):
        sklimg.load(path)


def test_an_augment_instance_is_stored_by_its_parameters(fitted, tmp_path):
    clf, X = fitted
    augment = Augment("light", hflip=0.0, crop_scale=(0.8, 1.0), erasing=0.25)
    loaded = sklimg.load(sklimg.save(_refitted(clf, augment=augment), tmp_path / "m.sklimg"))
    assert type(loaded.augment) is Augment
    assert loaded.augment.get_params() == augment.get_params()
    assert isinstance(loaded.augment.crop_scale, tuple)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    path = tmp_path / "m.sklimg"
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("sklimg.json"))
        weights = archive.read("weights.safetensors")
    tag = config["params"]["augment"]

    def edited(change):
        """The file, with ``change`` made to a copy of its configuration."""
        changed = json.loads(json.dumps(config))
        change(changed["params"])
        changed["sha256"] = sklimg.persistence._digest(changed, weights)
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("sklimg.json", json.dumps(changed))
            archive.writestr("weights.safetensors", weights)
        return path

    # Its parameters are checked like any other's (types and values), and only
    # augment may hold one: a file cannot build one elsewhere.
    changes = {
        "erasing": lambda p: p["augment"]["params"].update(erasing="always"),
        "crop_scale": lambda p: p["augment"]["params"].update(crop_scale=[5, 7]),
        "unknown encoded value": lambda p: p.update(backbone_kwargs={"k": tag}),
    }
    for message, change in changes.items():
        with pytest.raises(ModelFileError, match=message):
            sklimg.load(edited(change))


def test_parameters_scikit_learn_produces_round_trip(fitted, tmp_path):
    clf, X = fitted
    params = dict(
        batch_size=np.int64(32),  # GridSearchCV over np.array grids
        random_state=np.int64(0),
        image_shape=(np.int64(8), np.int64(8)),
        lr=np.float32(0.001),
        early_stopping=np.bool_(True),
        class_weight={0: 1.0, np.int64(1): np.float64(2.0)},  # JSON keys are strings only
        checkpoint_dir=tmp_path / "checkpoints",
        # A str-keyed dict that looks like the encoding of another type stays as is.
        backbone_kwargs={"__sklimg_type__": "path", "value": "x", "n": [1, 2.5, None]},
    )
    model = _refitted(clf, **params)
    loaded = sklimg.load(sklimg.save(model, tmp_path / "m.sklimg"), device="cpu")
    assert loaded.get_params() == {**model.get_params(), "device": "cpu"}
    assert [type(k) for k in loaded.class_weight] == [int, int]
    assert loaded.checkpoint_dir == tmp_path / "checkpoints"
    assert isinstance(loaded.image_shape, tuple)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    float_keys = _refitted(clf, class_weight={0.5: 1, True: 2, None: 3, "a": 4})
    loaded = sklimg.load(sklimg.save(float_keys, tmp_path / "f.sklimg"), device="cpu")
    assert loaded.class_weight == {0.5: 1, True: 2, None: 3, "a": 4}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"optimizer": "__torch.optim.SGD__"}, "optimizer"),
        ({"augment": "__Augment__"}, "augment"),
        ({"backbone_kwargs": {"act": "__ReLU__"}}, "backbone_kwargs"),
        ({"class_weight": {(0, 1): 1.0}}, "class_weight"),
        ({"class_weight": {0: object()}}, "class_weight"),
        ({"image_shape": np.array([8, 8])}, "image_shape"),
    ],
    ids=["optimizer-class", "augment", "module", "tuple-key", "object-value", "array"],
)
def test_objects_are_still_refused(fitted, tmp_path, params, name):
    import torch

    from sklimg.preprocessing import Augment

    class MyAugment(Augment):  # a subclass may hold anything: refused
        pass

    objects = {"__torch.optim.SGD__": torch.optim.SGD, "__Augment__": MyAugment()}
    objects["__ReLU__"] = torch.nn.ReLU()
    params = {
        k: {kk: objects.get(vv, vv) for kk, vv in v.items()}
        if isinstance(v, dict) and k == "backbone_kwargs"
        else objects.get(v, v)
        if isinstance(v, str)
        else v
        for k, v in params.items()
    }
    clf, _ = fitted
    with pytest.raises(ValueError, match=rf"Parameter {name}=.*cannot store without pickle"):
        sklimg.save(_refitted(clf, **params), tmp_path / "m.sklimg")
    assert list(tmp_path.iterdir()) == []


def test_save_checks_the_path_before_writing(fitted, tmp_path):
    clf, _ = fitted
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"is a folder.*file name.*models.model\.sklimg"):
        sklimg.save(clf, folder)
    with pytest.raises(FileNotFoundError, match=r"folder .*missing.* does not exist.*[Cc]reate"):
        sklimg.save(clf, tmp_path / "missing" / "m.sklimg")
    with pytest.raises(IsADirectoryError, match="names a folder"):
        sklimg.save(clf, str(tmp_path / "new") + "/")
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(NotADirectoryError, match=r"is not a folder"):
        sklimg.save(clf, file / "m.sklimg")
    with pytest.raises(TypeError, match=r"path must be a str or path-like.*got NoneType"):
        sklimg.save(clf, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "models"]
    assert list(folder.iterdir()) == []


def test_failed_save_leaves_no_temporary_file(fitted, tmp_path, monkeypatch):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "m.sklimg")
    before = path.read_bytes()

    def disk_full(self, name, data, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_full)
    with pytest.raises(OSError, match="No space left"):
        sklimg.save(clf, path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.sklimg"]
    assert path.read_bytes() == before  # the previous model is intact
    with pytest.raises(OSError, match="No space left"):
        sklimg.save(clf, tmp_path / "n.sklimg")
    assert [p.name for p in tmp_path.iterdir()] == ["m.sklimg"]


def test_load_refuses_folders_and_non_paths(tmp_path):
    with pytest.raises(ModelFileError, match=r"is a folder, not a model file"):
        sklimg.load(tmp_path)
    with pytest.raises(TypeError, match=r"path must be a str or path-like.*got NoneType"):
        sklimg.load(None)
    with pytest.raises(TypeError, match=r"path must be a str or path-like.*got int"):
        sklimg.load(3)
    (tmp_path / "file").write_text("")
    with pytest.raises(ModelFileError, match="does not exist"):
        sklimg.load(tmp_path / "file" / "m.sklimg")


@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int16, np.uint32, np.int64, np.float32, "U", object]
)
def test_classes_keep_their_dtype(fitted, tmp_path, dtype):
    clf, X = fitted
    model = _refitted(clf)
    if dtype in ("U", object):
        model.classes_ = np.array([f"digit-{d}" for d in range(10)], dtype=dtype)
    else:
        model.classes_ = np.arange(10).astype(dtype)
    loaded = sklimg.load(sklimg.save(model, tmp_path / "m.sklimg"), device="cpu")
    assert loaded.classes_.dtype == model.classes_.dtype
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert type(loaded.classes_[0]) is type(model.classes_[0])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("dtype", ["[('a', '<i4')]", "i4,i4", "M8", "S3", "c8", 5, "not a dtype"])
def test_classes_dtype_from_a_file_is_checked(fitted, tmp_path, dtype):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "m.sklimg")
    _rewrite(path, "sklimg.json", _edit_config(classes_dtype=dtype))
    _reseal(path)
    with pytest.raises(ModelFileError, match="unknown classes dtype"):
        sklimg.load(path)


def test_files_of_another_version_say_so_before_anything_else(fitted, tmp_path):
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")

    def version_1(raw):  # its digest field had another name
        config = json.loads(raw)
        config["weights_sha256"] = config.pop("sha256")
        return json.dumps({**config, "format_version": 1}).encode()

    _rewrite(path, "sklimg.json", version_1)
    with pytest.raises(ModelFileError, match="format version 1; this sklimg reads versions 2, 3"):
        sklimg.load(path)


def test_files_of_version_2_still_load(fitted, tmp_path):
    """Version 2 (neural heads only) had no route; its files load as they did."""
    clf, X = fitted
    path = sklimg.save(clf, tmp_path / "model.sklimg")

    def version_2(raw):
        config = json.loads(raw)
        del config["route"]
        return json.dumps({**config, "format_version": 2}).encode()

    _rewrite(path, "sklimg.json", version_2)
    _reseal(path)
    loaded = sklimg.load(path, device=str(clf.net_.device))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_a_model_file_without_its_pixel_range_is_refused(fitted, tmp_path):
    """Every fitted model records its training pixel range (prediction checks against
    it): a file without one is not a model this sklimg wrote."""
    clf, _ = fitted
    path = sklimg.save(clf, tmp_path / "m.sklimg")

    def without_range(raw):
        config = json.loads(raw)
        config["fitted"]["pixel_range_"] = None
        return json.dumps(config).encode()

    _rewrite(path, "sklimg.json", without_range)
    _reseal(path)
    with pytest.raises(ModelFileError, match="does not describe a model this sklimg can rebuild"):
        sklimg.load(path)
