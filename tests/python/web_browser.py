"""The web client in headless Chromium (Debian's, driven by playwright): the acceptance list of
the web client, against a running subscriber that follows root `foo` (root-example plus
`notes.md`, `stack.b2nd` and `pixel.png`, see tests/tests/e2e_web.rs).

Usage: web_browser.py BASE_URL PUBLISHER_METRICS_URL SCREENSHOT_DIR

Pixels are compared from element screenshots of images only (integer CSS scale, pixelated),
so fonts never enter a comparison. Screenshots of the main pages are written to
SCREENSHOT_DIR as artefacts, never compared.
"""

import io
import re
import sys
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import expect, sync_playwright

BASE, PUB_METRICS, SHOTS = sys.argv[1], sys.argv[2], Path(sys.argv[3])
SHOTS.mkdir(parents=True, exist_ok=True)
for old in SHOTS.glob("fail-*.png"):
    old.unlink()
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--force-device-scale-factor=1",
]
VIRIDIS_0 = (0x44, 0x01, 0x54)
VIRIDIS_255 = (0xFD, 0xE7, 0x25)
checks = []


def check(name):
    def wrap(f):
        checks.append((name, f))
        return f
    return wrap


def pixels(locator):
    """The element's screenshot as an RGB array."""
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(int)


def near(px, rgb, tol=2):
    return all(abs(int(a) - b) <= tol for a, b in zip(px, rgb))


def cell_centre(arr, rows, cols, r, c):
    h, w = arr.shape[:2]
    return arr[int((r + 0.5) * h / rows), int((c + 0.5) * w / cols)]


def wait(page, js, timeout=10.0):
    """Polls `js` (a function expression, evaluated as the page's CSP allows) until truthy."""
    import time
    end = time.monotonic() + timeout
    while not page.evaluate(js):
        assert time.monotonic() < end, f"timed out waiting for {js}"
        time.sleep(0.02)


def loaded(page, sel="#view-img"):
    wait(page, f"() => {{ const i = document.querySelector('{sel}'); return i && i.complete && i.naturalWidth > 0; }}")


def publisher_requests():
    text = urllib.request.urlopen(PUB_METRICS, timeout=10).read().decode()
    out = {}
    for m in re.finditer(r'^cat2_pub_requests_total\{endpoint="(\w+)"\} (\d+)', text, re.M):
        out[m.group(1)] = int(m.group(2))
    return out


@check("search flow keeps the choice and the search in the URL")
def search(page):
    page.goto(BASE + "/")
    page.get_by_label("foo").first.check()
    expect(page.locator("#path-list .count")).to_have_text("11 paths")
    expect(page).to_have_url(BASE + "/?roots=foo")
    page.fill("#search", "ds-")
    expect(page.locator("#path-list .count")).to_contain_text("7 paths")
    expect(page).to_have_url(re.compile(r"search=ds-"))
    assert page.locator("#path-list a", has_text="README.md").count() == 0
    page.screenshot(path=SHOTS / "home.png", full_page=True)
    page.reload()
    expect(page.locator("#path-list .count")).to_contain_text("7 paths")
    page.locator("#path-list a", has_text="ds-2d.b2nd").click()
    expect(page).to_have_url(BASE + "/roots/foo/dir1/ds-2d.b2nd")


@check("metadata values")
def metadata(page):
    page.goto(BASE + "/roots/foo/dir1/ds-2d.b2nd")
    for k, v in [("shape", "(10, 20)"), ("chunks", "(5, 5)"), ("blocks", "(2, 3)"),
                 ("dtype", "uint16"), ("nchunks", "8"), ("codec", "ZSTD")]:
        expect(page.locator(f'td[data-key="{k}"]').first).to_have_text(v)
    page.goto(BASE + "/roots/foo/ds-sc-attr.b2nd")
    for k, v in [("a", "1"), ("b", "foo"), ("c", "123.456")]:
        expect(page.locator(f'.vlmeta td[data-key="{k}"]')).to_have_text(v)
    expect(page.locator("#data-table td").first).to_have_text("foobar")


@check("table cells and paging")
def table(page):
    page.goto(BASE + "/roots/foo/dir1/ds-2d.b2nd?view=table")
    expect(page.locator('td[data-index="3,7"]')).to_have_text("67")
    page.screenshot(path=SHOTS / "table.png", full_page=True)
    page.click("#next-cols")
    expect(page).to_have_url(re.compile(r"cols=10:20"))
    heads = page.locator("#data-table thead th").all_inner_texts()
    assert heads[1:] == [str(i) for i in range(10, 20)], heads


@check("heatmap pixels are the colormap's ends")
def heatmap(page):
    page.goto(BASE + "/roots/foo/dir1/ds-2d.b2nd?vmin=0&vmax=199")
    img = page.locator("#view-img")
    expect(img).to_be_visible()
    arr = pixels(img)
    assert near(cell_centre(arr, 10, 20, 0, 0), VIRIDIS_0), cell_centre(arr, 10, 20, 0, 0)
    assert near(cell_centre(arr, 10, 20, 9, 19), VIRIDIS_255), cell_centre(arr, 10, 20, 9, 19)
    page.screenshot(path=SHOTS / "image.png", full_page=True)
    # The value probe: a click on the centre of cell (3, 7).
    box = img.bounding_box()
    img.click(position={"x": (7 + 0.5) * box["width"] / 20, "y": (3 + 0.5) * box["height"] / 10})
    expect(page.locator("#probe")).to_have_text("[3, 7] = 67")
    # Zoom: rows 2:4 of columns 5:10 is a 2×5 image of those items.
    page.goto(BASE + "/roots/foo/dir1/ds-2d.b2nd?rows=2:4&cols=5:10")
    loaded(page)
    size = page.evaluate("[document.querySelector('#view-img').naturalWidth, document.querySelector('#view-img').naturalHeight]")
    assert size == [5, 2], size


@check("slider by keyboard changes the image and the URL; the URL shows the same pixels")
def slider(page, browser):
    page.goto(BASE + "/roots/foo/dir1/ds-3d.b2nd")
    before = pixels(page.locator("#view-img"))
    page.focus("#r0")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#view-img")).to_have_attribute("data-src", re.compile(r"i0=1"))
    expect(page).to_have_url(re.compile(r"i0=1"))
    expect(page.locator("#dom-lo")).to_have_text("20.0")
    expect(page.locator("#slice-status")).to_have_text("slice 2 of 3")
    expect(page.locator("#slice-text")).to_have_text("[1,:,:]")
    expect(page.locator("#dl-npy")).to_have_attribute("href", re.compile(r"i0=1.*format=npy"))
    loaded(page)
    after = pixels(page.locator("#view-img"))
    assert near(cell_centre(after, 4, 5, 0, 0), VIRIDIS_0)
    assert before.shape == after.shape
    # j/k step the slider last used.
    page.keyboard.press("j")
    expect(page.locator("#slice-status")).to_have_text("slice 3 of 3")
    page.keyboard.press("k")
    expect(page.locator("#slice-status")).to_have_text("slice 2 of 3")
    loaded(page)
    shown = pixels(page.locator("#view-img"))
    url = page.url
    fresh = browser.new_context(viewport={"width": 1280, "height": 900})
    other = fresh.new_page()
    other.goto(url)
    copied = pixels(other.locator("#view-img"))
    for r in range(4):
        for c in range(5):
            a, b = cell_centre(copied, 4, 5, r, c), cell_centre(shown, 4, 5, r, c)
            assert near(a, tuple(b)), ("copied URL", r, c, a, b)
    fresh.close()


@check("axis remap")
def remap(page):
    page.goto(BASE + "/roots/foo/dir1/ds-3d.b2nd")
    selects = page.locator('select[name="axes"]')
    selects.nth(0).select_option("0")
    selects.nth(1).select_option("2")
    page.click("text=Apply")
    expect(page).to_have_url(re.compile(r"axes=0&axes=2"))
    size = page.evaluate("[document.querySelector('#view-img').naturalWidth, document.querySelector('#view-img').naturalHeight]")
    assert size == [5, 3], size
    expect(page.locator("#r1")).to_have_attribute("max", "3")


@check("the stack view reads one plane per step, and plays")
def stack(page):
    start = publisher_requests()
    page.goto(BASE + "/roots/foo/stack.b2nd")
    expect(page.locator('nav.tabs a[aria-current="page"]')).to_have_text("stack")
    expect(page.locator("#r0")).to_have_attribute("max", "31")
    page.focus("#r0")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#view-img")).to_have_attribute("data-src", re.compile(r"i0=1"))
    end = publisher_requests()
    chunks = end.get("chunks", 0) - start.get("chunks", 0)
    blocks = end.get("blocks", 0) - start.get("blocks", 0)
    assert chunks == 0 and 1 <= blocks <= 2, (start, end)
    page.screenshot(path=SHOTS / "stack.png", full_page=True)
    page.click("#play")
    expect(page.locator("#play")).to_have_attribute("aria-pressed", "true")
    wait(page, "() => Number(document.querySelector('#n0').value) >= 4")
    page.click("#play")
    expect(page.locator("#play")).to_have_attribute("aria-pressed", "false")


@check("markdown shows a script as text and never runs it; images at natural size")
def files(page):
    page.goto(BASE + "/roots/foo/README.md")
    expect(page.locator("#file-md")).to_contain_text("This is a simple example,")
    page.goto(BASE + "/roots/foo/notes.md")
    expect(page.locator("#file-md h1")).to_have_text("Notes")
    expect(page.locator("#file-md")).to_contain_text("<script>window.__xss=1</script>")
    assert page.evaluate("typeof window.__xss") == "undefined"
    page.screenshot(path=SHOTS / "markdown.png", full_page=True)
    page.goto(BASE + "/roots/foo/pixel.png")
    loaded(page, "#file-img")
    size = page.evaluate("[document.querySelector('#file-img').naturalWidth, document.querySelector('#file-img').naturalHeight]")
    assert size == [255, 3], size


@check("slice downloads")
def downloads(page):
    page.goto(BASE + "/roots/foo/ds-1d.b2nd?view=line&rows=10:20")
    with page.expect_download() as d:
        page.click("#dl-npy")
    arr = np.load(d.value.path())
    assert arr.dtype == np.dtype("<i8") and arr.shape == (10,) and list(arr) == list(range(10, 20)), arr
    with page.expect_download() as d:
        page.click("#dl-csv")
    assert len(Path(d.value.path()).read_text().splitlines()) == 10
    page.goto(BASE + "/roots/foo/ds-1d.b2nd")
    expect(page.locator("svg.line-plot")).to_be_visible()
    with page.expect_download() as d:
        page.click("#dl-all")
    import blosc2
    whole = blosc2.open(d.value.path())[:]
    assert (whole == np.arange(1000)).all()


@check("dark mode changes the page, not the pixels")
def dark(page, browser):
    page.goto(BASE + "/roots/foo/dir1/ds-2d.b2nd?vmin=0&vmax=199")
    light_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    loaded(page)
    light = pixels(page.locator("#view-img"))
    ctx = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    p.goto(BASE + "/roots/foo/dir1/ds-2d.b2nd?vmin=0&vmax=199")
    dark_bg = p.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_bg != light_bg, (dark_bg, light_bg)
    loaded(p)
    dark = pixels(p.locator("#view-img"))
    # Cell centres only: an element's box may take in a fractional pixel of page around it.
    for r in range(10):
        for c in range(20):
            a, b = cell_centre(dark, 10, 20, r, c), cell_centre(light, 10, 20, r, c)
            assert near(a, tuple(b)), (r, c, a, b)
    p.screenshot(path=SHOTS / "image-dark.png", full_page=True)
    ctx.close()


@check("pages work with JavaScript disabled")
def no_js(page, browser):
    ctx = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    p.goto(BASE + "/?roots=foo&search=ds-")
    expect(p.locator("#path-list .count")).to_contain_text("7 paths")
    p.goto(BASE + "/roots/foo/dir1/ds-3d.b2nd?view=image&idx=1")
    expect(p.locator("#view-img")).to_have_attribute("src", re.compile(r"idx=1"))
    p.fill("#n0", "2")
    p.click("text=Apply")
    expect(p).to_have_url(re.compile(r"i0=2"))
    expect(p.locator("#view-img")).to_have_attribute("src", re.compile(r"idx=2"))
    loaded(p)
    assert p.evaluate("document.querySelector('#view-img').naturalWidth") == 5
    ctx.close()


@check("errors are pages with a status, never a 500")
def errors(page):
    r = page.goto(BASE + "/roots/foo/dir1/nope.b2nd")
    assert r.status == 404 and "404" in page.locator("h1").inner_text()
    r = page.goto(BASE + "/roots/foo/dir1/ds-3d.b2nd?idx=99")
    assert r.status == 400 and "out of range" in page.content()
    r = page.goto(BASE + "/api/nonexistent")
    assert r.status == 404 and r.json() == {"detail": "Not Found"}


def main():
    seen, statuses = [], []
    failures = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for name, f in checks:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page = ctx.new_page()
            page.set_default_timeout(10000)
            page.on("request", lambda r: seen.append(r.url))
            page.on("response", lambda r: statuses.append((r.status, r.url)))
            try:
                if f.__code__.co_argcount == 2:
                    f(page, browser)
                else:
                    f(page)
                print(f"ok    {name}")
            except Exception as e:  # noqa: BLE001 - every check reports, then the run fails
                failures.append(name)
                print(f"FAIL  {name}: {type(e).__name__}: {e}")
                page.screenshot(path=SHOTS / f"fail-{f.__name__}.png", full_page=True)
            ctx.close()
        browser.close()
    # Offline: every request stayed on the subscriber (blob: images are its own bytes).
    foreign = [u for u in seen if not (u.startswith(BASE) or u.startswith("blob:") or u.startswith("data:"))]
    if foreign:
        failures.append("offline")
        print(f"FAIL  requests left the subscriber: {sorted(set(foreign))[:5]}")
    else:
        print(f"ok    all {len(seen)} requests stayed on {BASE}")
    fives = [s for s in statuses if s[0] >= 500]
    if fives:
        failures.append("no 500")
        print(f"FAIL  5xx answers: {fives[:5]}")
    if failures:
        print(f"{len(failures)} of {len(checks) + 2} checks failed: {failures}")
        sys.exit(1)
    print(f"all {len(checks) + 2} browser checks passed; screenshots in {SHOTS}")


if __name__ == "__main__":
    main()
