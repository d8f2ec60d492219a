"""Open rendered HTML reports in headless Chromium and list what a reader would see broken.

Used by tests/test_browser.py. Debian's ``chromium`` and ``chromium-driver`` (the system
chromedriver, so Selenium never downloads a driver) are driven with Selenium. For each
page: console errors, images that did not load, links whose target does not exist (an
``#id`` missing from the page, a relative file missing on disk), and elements that stick
out of a 390 px wide screen without being inside a scrolling container (a wide table
scrolls inside its wrapper; the page itself must not). Screenshots of every page at
desktop and phone width are saved for a human to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

#: Chromium's flags for a quiet, offline, sandbox-free headless run (CI containers run as root).
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
)
#: The phone width the reports must fit, and the desktop width of the second screenshot.
PHONE_WIDTH, DESKTOP_WIDTH = 390, 1280
#: Screenshots stop at this height (a long report would make a huge PNG).
MAX_SCREENSHOT_HEIGHT = 6000

#: Elements wider than the viewport and not inside a container that scrolls or clips them.
OVERFLOW_JS = """
const width = document.documentElement.clientWidth;
function contained(el) {
  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX;
    if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
  }
  return false;
}
const found = [];
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.right <= width + 1) continue;
  if (contained(el)) continue;
  const parent = el.parentElement;
  if (parent && parent !== document.body && parent.getBoundingClientRect().right > width + 1 && !contained(parent)) continue;
  found.push(el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '')
             + ' right=' + Math.round(r.right));
}
return [document.documentElement.scrollWidth, width, found.slice(0, 10)];
"""
BROKEN_IMAGES_JS = """
return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
  .map(i => (i.alt || i.src.slice(0, 40)));
"""
LINKS_JS = "return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'));"
IDS_JS = "return Array.from(document.querySelectorAll('[id]')).map(e => e.id);"


def chromium_binary() -> str | None:
    """The Chromium executable (Debian's wrapper script's target when present)."""
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def missing_browser() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (uv sync --all-groups)"
    if chromium_binary() is None:
        return "Chromium is not installed (Debian: apt-get install chromium chromium-driver)"
    if shutil.which("chromedriver") is None:
        return "chromedriver is not installed (Debian: apt-get install chromium-driver)"
    return None


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium driven by the system chromedriver; quit at exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_binary() or ""
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def set_viewport(driver, width: int, height: int = 900) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def screenshot(driver, width: int, path: Path) -> None:
    """The page at ``width``, as tall as its content (capped), saved as PNG."""
    set_viewport(driver, width)
    height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), MAX_SCREENSHOT_HEIGHT)
    set_viewport(driver, width, max(height, 600))
    driver.save_screenshot(str(path))


def link_problems(page: Path, hrefs: Sequence[str], ids: set[str]) -> list[str]:
    problems = []
    for href in hrefs:
        parsed = urlparse(href)
        if parsed.scheme in ("http", "https", "mailto", "data"):
            continue
        if not parsed.path:
            if unquote(parsed.fragment) not in ids:
                problems.append(f"link {href!r} points to no element on the page")
            continue
        if not (page.parent / unquote(parsed.path)).is_file():
            problems.append(f"link {href!r} points to a missing file")
    return problems


def page_name(page: Path, root: Path | None) -> str:
    """A page's name: its path under ``root`` (``et/overview.html``), else its folder and file name."""
    if root is not None and page.resolve().is_relative_to(root.resolve()):
        return page.resolve().relative_to(root.resolve()).as_posix()
    return f"{page.parent.name}/{page.name}"


def check_pages(pages: Sequence[Path], screenshots: Path, root: Path | None = None) -> dict[str, list[str]]:
    """Open every page; the problems found per page name (empty lists when all is well)."""
    screenshots.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[str]] = {}
    with chromium() as driver:
        for page in pages:
            name = page_name(page, root)
            problems: list[str] = []
            set_viewport(driver, DESKTOP_WIDTH)
            driver.get(page.resolve().as_uri())
            problems += [f"console {entry['level']}: {entry['message'][:200]}"
                         for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
            problems += [f"image did not load: {alt}" for alt in driver.execute_script(BROKEN_IMAGES_JS)]
            problems += link_problems(page, driver.execute_script(LINKS_JS), set(driver.execute_script(IDS_JS)))
            stem = name.removesuffix(".html").replace("/", "-")
            screenshot(driver, DESKTOP_WIDTH, screenshots / f"{stem}-desktop.png")
            set_viewport(driver, PHONE_WIDTH)
            scroll_width, width, sticking_out = driver.execute_script(OVERFLOW_JS)
            if scroll_width > width + 1 or sticking_out:
                problems.append(f"at {PHONE_WIDTH} px the page is {scroll_width} px wide; outside a scrolling "
                                f"container: {', '.join(sticking_out) or 'the page itself'}")
            screenshot(driver, PHONE_WIDTH, screenshots / f"{stem}-phone.png")
            problems += [f"console {entry['level']}: {entry['message'][:200]}"
                         for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
            found[name] = problems
    return found
