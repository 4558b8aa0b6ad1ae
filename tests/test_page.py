"""The learner page in a real headless Chromium, against the service with the real model.

Skipped where selenium, Chromium or chromedriver is missing (`apt-get install chromium chromium-driver`,
`pip install selenium`; CI installs them). Set ORTHOEPY_PAGE_SCREENSHOT=docs/page.png to refresh the README
screenshot; every run saves one under pytest's tmp_path.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from orthoepy.rationalizer.bands import BAND_NAMES, GRANULARITIES, SCALES, band

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "fusion" / "samples"
WINDOW_WIDTH = 900
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--window-size={WINDOW_WIDTH},1400")
RESULT_TIMEOUT_S = 180  # a real assessment on a slow, busy CI machine
SCREENSHOT_ENV = "ORTHOEPY_PAGE_SCREENSHOT"


def _find(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def base_url():
    """The service with the real assessor, served by uvicorn on a free 127.0.0.1 port in a background thread."""
    import uvicorn

    from orthoepy.fusion.assessor import Assessor
    from orthoepy.fusion.service import create_app

    try:
        assessor = Assessor.from_pretrained(rationale="rubric")
    except Exception as err:  # no shipped model, missing optional pieces, ...
        pytest.skip(f"the real assessor did not load ({type(err).__name__}: {err})")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # handed to uvicorn already bound: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(lambda: assessor), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            pytest.fail("uvicorn did not start the service")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    browser, driver = _find(BROWSERS), _find(("chromedriver",))
    if browser is None or driver is None:
        missing = " and ".join(n for n, p in (("Chromium", browser), ("chromedriver", driver)) if p is None)
        pytest.skip(f"{missing} not found on PATH (apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture
def browser(browser_paths):
    binary, driver_path = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="orthoepy-chromium-")
    for flag in CHROME_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    except WebDriverException as err:
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"headless Chromium did not start: {err.msg}")
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def demo() -> tuple[Path, str]:
    meta = json.loads((SAMPLES / "demo.json").read_text())
    return SAMPLES / meta["audio"], meta["text"]


# ---------------------------------------------------------------------------------------------- helpers

def fill_and_submit(browser, base_url: str, audio: Path, text: str) -> None:
    browser.get(base_url + "/")
    browser.find_element(By.ID, "audio-file").send_keys(str(audio))
    browser.find_element(By.ID, "text").send_keys(text)
    browser.find_element(By.ID, "submit").click()


def wait_for(browser, condition, what: str):
    try:
        return WebDriverWait(browser, RESULT_TIMEOUT_S, poll_frequency=0.2).until(lambda d: condition(d))
    except TimeoutException:
        message = browser.find_element(By.ID, "message").text
        pytest.fail(f"no {what} within {RESULT_TIMEOUT_S} s; page message: {message!r}; console: {console(browser)}")


def console(browser) -> list[dict]:
    return browser.get_log("browser")


def console_errors(entries: list[dict], allow: str | None = None) -> list[str]:
    return [e["message"] for e in entries
            if e["level"] == "SEVERE" and not (allow and re.search(allow, e["message"]))]


def grade_of(element) -> str:
    grades = set(element.get_attribute("class").split()) & set(BAND_NAMES)
    assert len(grades) == 1, f"expected one of {BAND_NAMES} in class {element.get_attribute('class')!r}"
    return grades.pop()


def rgba(hex_colour: str) -> str:
    """"#c8e6c9" as WebDriver reports a CSS colour: "rgba(200, 230, 201, 1)"."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, 1)"


def assert_banded(element, value: float, granularity: str) -> None:
    """The element is coloured as rationalizer.bands says for the score it shows."""
    expected = band(value, granularity)
    assert grade_of(element) == expected.name, (granularity, value, element.text)
    assert element.value_of_css_property("background-color") == rgba(expected.background)


# ---------------------------------------------------------------------------------------------- tests

def test_demo_recording_is_scored_and_coloured(browser, base_url, demo, tmp_path):
    audio, text = demo
    fill_and_submit(browser, base_url, audio, text)
    wait_for(browser, lambda d: d.find_element(By.ID, "result").is_displayed(), "result")

    # sentence scores: the five aspects, each 0-10 and coloured by the sentence bands of the one band table
    rows = browser.find_elements(By.CSS_SELECTOR, "#sentence-scores tr")
    aspects = {}
    for row in rows:
        name, cell = row.find_elements(By.TAG_NAME, "td")
        aspects[name.text] = float(cell.text)
        assert 0 <= aspects[name.text] <= 10
        assert_banded(cell, aspects[name.text], "sentence")  # shown rounded to 0.1, as the table bands it
    assert set(aspects) == {"accuracy", "completeness", "fluency", "prosodic", "total"}

    # the rationale (rubric text in this test's assessor) is shown under the scores, its band words = the colours
    rationale = browser.find_element(By.ID, "rationale")
    assert "accuracy" in rationale.text.lower() and rationale.get_attribute("title") == "written by: rubric"
    from orthoepy.rationalizer.mentions import parse_rationale

    for judgement in parse_rationale(rationale.text).aspects:
        if judgement.bands:
            assert judgement.bands == {band(aspects[judgement.aspect], "sentence").name}, rationale.text

    # the legend: the table's band words, best first, in the table's colours
    legend = browser.find_elements(By.CSS_SELECTOR, "#legend-bands span")
    assert [s.text for s in legend] == list(reversed(BAND_NAMES))
    for span, expected in zip(legend, reversed(SCALES["word"].bands)):
        assert span.value_of_css_property("background-color") == rgba(expected.background)

    # one card per word of the text, in order, coloured by its accuracy, with its phones coloured too
    cards = browser.find_elements(By.CSS_SELECTOR, "#words .word")
    words = [c.find_element(By.CLASS_NAME, "text").text for c in cards]
    assert [w.lower() for w in words] == re.findall(r"[a-z']+", text.lower())
    for card in cards:
        score = card.find_element(By.CLASS_NAME, "score").text
        accuracy = float(re.match(r"accuracy (\d+\.\d) · stress \d+\.\d$", score).group(1))
        assert_banded(card, accuracy, "word")
        phones = card.find_elements(By.CSS_SELECTOR, ".phones .phone")
        assert phones, f"no phones for {card.text!r}"
        for phone in phones:
            assert re.fullmatch(r"[A-Z]{1,2}", phone.text), phone.text  # stress digit stripped
            shown = re.match(r"score (\d\.\d\d) of 2", phone.get_attribute("title"))
            assert shown, phone.get_attribute("title")
            assert_banded(phone, float(shown.group(1)), "phone")
    assert browser.find_element(By.ID, "message").text == ""
    assert not browser.find_element(By.ID, "playback").is_displayed()  # the player is for recordings only
    assert console_errors(console(browser)) == []

    chrome, bottom = browser.execute_script(  # window frame height; the page's end
        "return [window.outerHeight - window.innerHeight,"
        " Math.ceil(document.querySelector('main').getBoundingClientRect().bottom + window.scrollY)]")
    browser.set_window_size(WINDOW_WIDTH, chrome + bottom)
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])


def test_page_bands_scores_as_the_table_does(browser, base_url):
    """The page's own band() on the table it received, over every shown value and just around each edge."""
    browser.get(base_url + "/")
    grid = {g: _grid(g) for g in GRANULARITIES}
    page = browser.execute_async_script(
        "const [grid, done] = arguments;"
        "loadBands().then((bands) => done(Object.fromEntries(Object.entries(grid).map(([g, values]) =>"
        "  [g, values.map((v) => band(bands, v, g).name)]))), (err) => done(String(err)));", grid)
    assert isinstance(page, dict), page
    for granularity, values in grid.items():
        assert page[granularity] == [band(v, granularity).name for v in values], granularity
    assert console_errors(console(browser)) == []


def _grid(granularity: str) -> list[float]:
    s = SCALES[granularity]
    step = 10.0 ** -s.decimals
    values = [round(s.minimum + i * step, s.decimals) for i in range(round((s.maximum - s.minimum) / step) + 1)]
    return values + [e + d * step for e in s.edges for d in (-0.6, -0.5001, -0.4, 0.4)] + [-1.0, s.maximum + 1]


@pytest.mark.parametrize("audio_bytes, text, message", [
    (b"this is a text file, not a recording\n", "The weather is nice today.", "not readable audio"),
    (None, "!!!", "no pronounceable English word"),
], ids=["non-audio-file", "no-english-word"])
def test_bad_input_shows_the_api_error(browser, base_url, demo, tmp_path, audio_bytes, text, message):
    audio = demo[0]
    if audio_bytes is not None:
        audio = tmp_path / "notes.txt"
        audio.write_bytes(audio_bytes)
    fill_and_submit(browser, base_url, audio, text)
    shown = wait_for(browser, lambda d: (m := d.find_element(By.ID, "message")).get_attribute("class") == "error"
                     and m.text, "error message")
    assert message in shown
    assert browser.find_element(By.ID, "message").value_of_css_property("color") == "rgba(176, 0, 32, 1)"
    assert " object at 0x" not in shown
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert browser.find_element(By.ID, "submit").is_enabled()
    # the failed request itself is logged by Chromium as a 422; nothing else may be
    assert console_errors(console(browser), allow=r"/v1/assess .*status of 422") == []
