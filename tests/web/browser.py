"""Headless Chromium for the web UI tests.

``browser_page(base_url)`` starts Playwright, launches Debian's
/usr/bin/chromium headless (never a downloaded browser) and yields a fresh
Playwright sync ``Page`` whose relative ``goto()`` URLs resolve against
``base_url``.  Everything is closed on the way out, whatever happened.
``chromium_path()`` says whether that browser is there (tests skip if not).
"""
import contextlib
import os

CHROMIUM = '/usr/bin/chromium'

CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
]


def chromium_path():
    """The Chromium executable to drive, or None if it is not installed."""
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return None


@contextlib.contextmanager
def browser_page(base_url, screenshot_dir=None, viewport=(1280, 800)):
    """Yield a Playwright sync Page of a freshly launched headless Chromium.

    ``screenshot_dir``, if given, is created and remembered on the page as
    ``page.screenshot_dir`` (a convenience for tests that save screenshots
    there).
    """
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError('%s is not installed' % CHROMIUM)
    if screenshot_dir:
        os.makedirs(screenshot_dir, exist_ok=True)
    playwright = sync_playwright().start()
    browser = context = page = None
    try:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=list(CHROMIUM_ARGS))
        context = browser.new_context(
            base_url=base_url,
            viewport={'width': viewport[0], 'height': viewport[1]})
        page = context.new_page()
        page.screenshot_dir = screenshot_dir
        yield page
    finally:
        for closer in (page, context, browser):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer.close()
        with contextlib.suppress(Exception):
            playwright.stop()
