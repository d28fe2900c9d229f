"""The dashboard in a real browser (headless Chromium from Debian's packages, driven by Selenium): it renders
a running campaign, and the numbers it shows are the ones `campaign show` gives."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import http_account, session_service, show, submit, wait_for

svc = session_service()


def ensure_chromium() -> tuple[str, str]:
    """Debian's chromium and chromium-driver: installed here when missing (the test set-up may use the
    package registry), else the test is skipped with the reason."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium and chromium-driver are missing and cannot be installed here (no root/apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        if proc.returncode != 0:
            pytest.skip(f"could not install chromium: {' '.join(cmd)}: {proc.stderr[-500:]}")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("chromium installed but not found on PATH")
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    binary, driver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="dialer-chromium-")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=DriverService(executable_path=driver))
    chrome.set_page_load_timeout(30)
    yield chrome
    chrome.quit()
    shutil.rmtree(profile, ignore_errors=True)


READ_ROW = """
const row = document.getElementById("c-" + arguments[0]);
if (!row) return null;
const text = (name) => row.querySelector("td." + name).textContent;
const progress = row.querySelector("td.progress");
return {delivered: +text("delivered"), failed: +text("failed"), skipped: +text("skipped"), pending: +text("pending"),
        name: text("name"), status: text("status"), summary: text("summary"), done: +progress.dataset.done};
"""


def read_row(chrome: Any, cid: str) -> dict[str, Any]:
    """The campaign's row as the page shows it now (read in one step: the page redraws every 2 s)."""
    return dict(chrome.execute_script(READ_ROW, cid) or {})


def shown_numbers(chrome: Any, cid: str) -> dict[str, int]:
    row = read_row(chrome, cid)
    return {k: row.get(k, -1) for k in ("delivered", "failed", "skipped", "pending")}


def test_the_dashboard_shows_a_running_campaign_with_the_numbers_of_campaign_show(
    web: str, stack: Any, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    account, client = http_account(web)
    client.patch("/providers/sim", json={"cps": 2})
    numbers = [{"phone": f"+346003{i:04d}{i % 10}"} for i in range(16)]
    cid = submit(svc, account, {"contacts": numbers, "say": "hi", "name": "Dashboard run"})
    wait_for(lambda: show(svc, account, cid)["counters"]["sent"] >= 2, timeout=30, what="dialling")
    key = client.headers["Authorization"].split()[1]
    browser.get(f"{web}/dashboard")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "enter").click()
    wait_for(lambda: read_row(browser, cid), timeout=15, what="the campaign's row")
    assert browser.find_element(By.ID, "account").text == account
    # while it runs: what the page shows lies between two reads of campaign show around it
    before = show(svc, account, cid)["counters"]
    seen = shown_numbers(browser, cid)
    after = show(svc, account, cid)["counters"]
    assert before["delivered"] - 2 <= seen["delivered"] <= after["delivered"]  # the page polls every 2 s
    row = read_row(browser, cid)
    assert row["name"] == "Dashboard run" and row["summary"]
    # once it is over the page settles on exactly the numbers of campaign show
    final = wait_for(lambda: (v := show(svc, account, cid))["status"] == "completed" and v, timeout=60)[
        "counters"
    ]
    expected = {
        "delivered": final["delivered"],
        "failed": final["failed"],
        "skipped": final["skipped"],
        "pending": 0,
    }
    wait_for(lambda: shown_numbers(browser, cid) == expected, timeout=10, what=f"the page to show {expected}")
    row = read_row(browser, cid)
    assert (
        row["status"] == "completed"
        and row["done"] == final["delivered"] + final["failed"] + final["skipped"]
    )
    calls = browser.execute_script(
        'return [...document.querySelectorAll("#chart rect")].map((r) => +r.dataset.calls)'
    )
    assert len(calls) == 30 and sum(calls) >= final["sent"]


def test_a_wrong_key_shows_the_error_and_no_data(web: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{web}/dashboard")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{web}/dashboard")
    browser.find_element(By.ID, "key").send_keys("dk_not_a_key")
    browser.find_element(By.ID, "enter").click()
    wait_for(lambda: browser.find_element(By.ID, "error").text == "invalid API key", timeout=10)
    assert browser.find_element(By.ID, "board").get_attribute("hidden") is not None
