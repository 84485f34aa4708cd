"""The install and connect pages in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium) loads each page from the running app, reads what a person reads, follows the flow with the
state cookie the browser keeps, and saves a screenshot of each page under tests/artifacts/ (ignored by git).

Without Chromium the tests skip and say why (`.ci/run` installs it); they never pass without a browser.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from tests.support.helpers import RunningServer, connect
from tests.support.oauth import BOT_TOKEN, STATE_COOKIE, oauth_answer

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Chromium is not installed (apt-get install chromium chromium-driver): the browser tests did not run",
)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1024,900", "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(argument)
    # The Debian driver, named explicitly: Selenium Manager must not try to download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture
def app_url(offhours, fake_slack) -> Iterator[str]:
    fake_slack.oauth_codes["code-1"] = oauth_answer("U1", with_bot=True)
    fake_slack.oauth_codes["code-2"] = oauth_answer("U2", with_bot=False)
    fake_slack.tokens[BOT_TOKEN] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    fake_slack.add_user("U1", tz="Europe/Rome")
    fake_slack.add_user("U2", tz="Asia/Tokyo")
    running = RunningServer(offhours)
    yield running.url
    running.close()


def visit(browser, url: str, shot: str) -> str:
    """Load `url`, check the page is well-formed for a person and a screen reader, save a screenshot; its text."""
    from selenium.webdriver.common.by import By

    browser.get(url)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert browser.title.endswith("· Offhours")
    assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
    assert browser.find_elements(By.TAG_NAME, "script") == []
    for link in browser.find_elements(By.TAG_NAME, "a"):
        assert link.text.strip(), "every link says where it goes"
    # Nothing loaded from anywhere else: no CDN, no fonts, no images from elsewhere.
    origin = "{0.scheme}://{0.netloc}".format(urlparse(url))
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [r for r in resources if not r.startswith((origin, "data:"))] == []
    browser.save_screenshot(str(ARTIFACTS / f"{shot}.png"))
    return browser.find_element(By.TAG_NAME, "main").text


def install_link(browser) -> str:
    from selenium.webdriver.common.by import By

    [button] = browser.find_elements(By.CSS_SELECTOR, "a.button")
    return button.get_attribute("href")


def state_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["state"][0]


def test_first_install_then_success_in_a_browser(browser, app_url):
    browser.delete_all_cookies()
    text = visit(browser, f"{app_url}/slack/install", "install")
    assert "Install Offhours in your Slack workspace" in text
    assert "Add Offhours to Slack" in text
    assert "/hours forget" in text
    link = install_link(browser)
    assert link.startswith("https://slack.com/oauth/v2/authorize?")
    state = state_of(link)
    assert browser.get_cookie(STATE_COOKIE)["value"] == state  # the install link carries the browser's state

    # Slack sends the browser back with a code and the state; the browser brings its cookie.
    text = visit(browser, f"{app_url}/slack/oauth_redirect?{urlencode({'code': 'code-1', 'state': state})}", "success")
    assert "Offhours is installed in Example" in text
    assert "/hours set mon-fri 9-17:30" in text and "Home tab" in text
    from selenium.webdriver.common.by import By

    hrefs = {a.text: a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")}
    assert hrefs["Open Offhours in Slack"] == "slack://app?team=T1&id=A1&tab=home"
    assert hrefs["Open Slack in this browser"] == "https://app.slack.com/client/T1"
    assert browser.get_cookie(STATE_COOKIE) is None  # the state cookie is spent


def test_a_person_connects_to_an_installed_workspace(browser, app_url, store, fake_slack):
    connect(store, fake_slack, "U1")  # the workspace is installed
    browser.delete_all_cookies()
    text = visit(browser, f"{app_url}/slack/install", "connect")
    assert "Connect your DMs to Offhours" in text and "already in your workspace" in text
    state = state_of(install_link(browser))
    assert browser.get_cookie(STATE_COOKIE)["value"] == state
    text = visit(browser, f"{app_url}/slack/oauth_redirect?{urlencode({'code': 'code-2', 'state': state})}",
                 "connect-success")  # fmt: skip
    assert "Your DMs are connected in Example" in text
    assert store.user_token("T1", "U2") == "xoxp-oauth-U2"


def test_cancel_says_nothing_was_stored_and_offers_to_connect_again(browser, app_url, store):
    browser.delete_all_cookies()
    visit(browser, f"{app_url}/slack/install", "install-before-cancel")
    state = state_of(install_link(browser))
    query = urlencode({"error": "access_denied", "state": state})
    text = visit(browser, f"{app_url}/slack/oauth_redirect?{query}", "cancel")
    assert "No problem: nothing was connected" in text
    assert "stored nothing about you" in text and "connect any time" in text
    assert install_link(browser) == f"{app_url}/slack/install"
    assert "access_denied" not in text
    assert store.user_token("T1", "U1") is None


@pytest.mark.parametrize(
    ("case", "heading"),
    [("expired", "This link has expired"), ("refused", "Slack did not finish connecting Offhours")],
)
def test_failures_say_what_to_try_without_internal_error_text(browser, app_url, store, case, heading):
    browser.delete_all_cookies()
    visit(browser, f"{app_url}/slack/install", f"install-before-{case}")
    state = state_of(install_link(browser))
    query = {"code": "code-1", "state": "forged"} if case == "expired" else {"code": "not-a-code", "state": state}
    text = visit(browser, f"{app_url}/slack/oauth_redirect?{urlencode(query)}", f"failure-{case}")
    assert heading in text
    assert "Nothing was stored" in text
    for internal in ("invalid_state", "invalid_browser", "invalid_code", "Traceback", "reason", "Oops"):
        assert internal not in text
    assert install_link(browser) == f"{app_url}/slack/install"
    assert store.bot_token("T1") is None
