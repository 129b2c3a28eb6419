"""The page of ``sklimg serve`` in a real browser: headless Chromium (Debian's
``chromium`` and ``chromium-driver``, driven by selenium pointed at them, so nothing is
downloaded) opens it, uploads images and reads the labels and probabilities shown.

``SKLIMG_UPDATE_SCREENSHOT=1`` also writes the screenshot the documentation shows,
docs/_static/serving_page.png.
"""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

import sklimg
from sklimg.cli._models import prepare_images
from tests.serving_helpers import ROOT, colour_images

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Chromium and its driver: apt-get install chromium chromium-driver (make "
    "chromium)",
)
SCREENSHOT = ROOT / "docs" / "_static" / "serving_page.png"


@pytest.fixture(scope="module")
def served(serving_server, serving_model_file, tmp_path_factory):
    """The serving tests' server (tests/conftest.py), its model, a folder for images."""
    root = tmp_path_factory.mktemp("browser")
    return serving_server, sklimg.load(serving_model_file, device="cpu"), root


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the test may run as root, in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1100,760",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    yield driver
    driver.quit()


def test_page_shows_the_label_of_an_uploaded_image(served, browser, tmp_path):
    server, model, root = served
    X, _ = colour_images(3, size=(48, 48), seed=4)
    paths = []
    for i, image in enumerate(X):
        paths.append(root / f"photo_{i}.png")
        Image.fromarray(image).save(paths[-1])
    expected = model.predict(prepare_images(model, [str(p) for p in paths]))

    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert "test_cnn" in browser.find_element(By.ID, "model-info").text
    browser.find_element(By.ID, "saliency").click()
    browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in paths))
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".card .label")) == len(paths))

    cards = browser.find_elements(By.CSS_SELECTOR, ".card")
    assert [c.find_element(By.CLASS_NAME, "name").text for c in cards] == [p.name for p in paths]
    assert [c.find_element(By.CLASS_NAME, "label").text for c in cards] == expected.tolist()
    for card in cards:
        bars = card.find_elements(By.CSS_SELECTOR, ".bar")
        assert len(bars) == len(model.classes_)
        shown = [float(b.find_element(By.CLASS_NAME, "value").text) for b in bars]
        assert abs(sum(shown) - 1) < 0.01 and shown == sorted(shown, reverse=True)
        assert card.find_element(By.CLASS_NAME, "unknown").text  # the unknown answer
        saliency = card.find_elements(By.CSS_SELECTOR, "img[alt^='saliency map']")
        assert len(saliency) == 1
        wait.until(expected_conditions.visibility_of(saliency[0]))

    shot = tmp_path / "serving_page.png"
    assert browser.save_screenshot(str(shot))
    with Image.open(shot) as image:
        assert np.asarray(image.convert("L")).std() > 0  # not a blank page
    if os.environ.get("SKLIMG_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
