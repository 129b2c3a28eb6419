"""ImageClassifier.transform: the features the head sees, as embeddings."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from sklimg import ImageClassifier
from sklimg.exceptions import ImageInputError
from sklimg.preprocessing import Augment, Resize

PARAMS = dict(backbone="test_cnn", lr=0.03, random_state=0)


@pytest.fixture(scope="module")
def fitted(digits_split):
    X_train, _, y_train, _ = digits_split
    return ImageClassifier(**PARAMS).fit(X_train, y_train)


def test_the_features_are_the_head_s_input(fitted, digits_split):
    _, X_test, _, _ = digits_split
    features = fitted.transform(X_test)
    assert features.shape == (len(X_test), fitted.net_.module_.head.in_features)
    assert features.dtype == np.float32
    with torch.no_grad():
        logits = fitted.net_.module_.head(torch.from_numpy(features))
    np.testing.assert_allclose(
        torch.softmax(logits, dim=1).numpy(), fitted.predict_proba(X_test), atol=1e-5
    )


def test_the_features_are_embeddings_of_what_was_learned(fitted, digits_split):
    X_train, X_test, y_train, y_test = digits_split
    knn = KNeighborsClassifier(5).fit(fitted.transform(X_train), y_train)
    assert knn.score(fitted.transform(X_test), y_test) > 0.9
    # A classifier followed by another step in a pipeline fits, then transforms.
    stacked = make_pipeline(ImageClassifier(**PARAMS), LogisticRegression(max_iter=1000))
    assert stacked.fit(X_train, y_train).score(X_test, y_test) > 0.9


def test_tta_averages_the_features_over_the_views(fitted, digits_split):
    _, X_test, _, _ = digits_split
    plain = fitted.transform(X_test)
    mirrored = fitted.transform(X_test[:, :, ::-1])
    flipped = fitted.set_params(tta="flip").transform(X_test)
    fitted.set_params(tta=None)
    np.testing.assert_allclose(flipped, (plain + mirrored) / 2, atol=1e-5)


def test_files_give_the_features_of_their_pixels(fitted, digits_split, tmp_path):
    _, X_test, _, _ = digits_split
    images = np.round(X_test[:20] * 255).astype(np.uint8)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    np.testing.assert_allclose(
        fitted.transform(paths), fitted.transform(images / np.float32(255)), atol=1e-5
    )


def test_a_scikit_learn_head_s_features(digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = ImageClassifier("pixels").fit(X_train[:300], y_train[:300])
    features = clf.transform(X_test)
    np.testing.assert_array_equal(features, clf.feature_extractor_.transform(X_test))
    np.testing.assert_array_equal(clf.head_.predict(features), clf.predict(X_test))


def test_transform_refuses_what_predict_refuses(fitted):
    with pytest.raises(NotFittedError):
        ImageClassifier(**PARAMS).transform(np.zeros((2, 8, 8)))
    with pytest.raises(ImageInputError, match=r"fitted on images of height x width \(8, 8\)"):
        fitted.transform(np.zeros((2, 16, 16), dtype=np.float32))


def test_a_pipeline_stacks_on_the_images_not_on_their_augmented_view(digits_split):
    X_train, X_test, y_train, _ = digits_split
    stacked = make_pipeline(
        Augment("light"),
        ImageClassifier(**PARAMS, max_epochs=3),
        LogisticRegression(max_iter=1000),
    )
    first = stacked.fit(X_train[:300], y_train[:300]).predict_proba(X_test)
    # Features of the real images: the logistic regression is fitted on the same ones.
    np.testing.assert_array_equal(
        stacked.fit(X_train[:300], y_train[:300]).predict_proba(X_test), first
    )


def test_set_output_names_the_features(fitted, digits_split):
    pytest.importorskip("pandas")
    X_train, X_test, y_train, _ = digits_split
    frame = clone(fitted).fit(X_train, y_train).set_output(transform="pandas").transform(X_test)
    assert list(frame.columns[:2]) == ["imageclassifier0", "imageclassifier1"]
    np.testing.assert_allclose(frame.to_numpy(), fitted.transform(X_test))
    pixels = ImageClassifier("pixels").fit(X_train[:200], y_train[:200])
    assert pixels.get_feature_names_out()[0] == "pixel_r0_c0_gray"
    # A pipeline holding the classifier takes set_output as any other.
    pipe = make_pipeline(Resize(8), ImageClassifier(**PARAMS, max_epochs=1))
    pipe.set_output(transform="pandas").fit(X_train[:200], y_train[:200])
    assert pipe.predict(X_test[:3]).shape == (3,)
