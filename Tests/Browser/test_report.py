#!/usr/bin/env python3
"""Browser tests of `attninspect report` (issue 22), in a real headless Chromium driven by Playwright.

usage: test_report.py --bin PATH [--chromium /usr/bin/chromium] [--screenshots DIR]

Each report is written by the binary from TestData and opened from file://. Checked: no console error or warning, no
uncaught exception, no request but the page itself; hovering a query token in the head view shows, for that layer
and head, the values `attninspect tokens --query i` prints (4 decimals); clicking an entropy cell selects that layer
and head in the stats table, the model view, the matrix view and the head view; a token made of markup and script
shows as its text, runs nothing and adds no element; the page works at 1280x800 and at a phone's 390x844.
Exit status 0 when every check passes; each failure is named on stderr.
"""
import argparse
import ast
import os
import struct
import subprocess
import sys
import tempfile

from playwright.sync_api import sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(binary, *args):
    p = subprocess.run([binary, *args], cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p.stdout


def npy(path):
    """(shape, values) of a little-endian float32 .npy as attninspect writes it."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", path
    size = struct.unpack("<H", data[8:10])[0] if data[6] == 1 else struct.unpack("<I", data[8:12])[0]
    start = (10 if data[6] == 1 else 12) + size
    header = ast.literal_eval(data[(10 if data[6] == 1 else 12):start].decode("latin1"))
    assert header["descr"] == "<f4" and not header["fortran_order"], header
    return header["shape"], struct.unpack(f"<{(len(data) - start) // 4}f", data[start:])


def argmax(values):
    return max(range(len(values)), key=lambda i: values[i])


def open_page(browser, path, viewport=(1280, 800)):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    log = {"console": [], "requests": [], "dialogs": []}
    page.on("console",
            lambda m: log["console"].append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: log["console"].append(f"exception: {e}"))
    page.on("request", lambda r: log["requests"].append(r.url))
    page.on("dialog", lambda d: (log["dialogs"].append(d.message), d.dismiss()))
    page.goto("file://" + path)
    page.wait_for_selector("#stats-table tbody tr")
    return page, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build/debug/attninspect"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--screenshots", help="also save a picture of each view here")
    a = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="attninspect-browser-")
    reports = {}
    for name, dump in [("zen", "TestData/real/minilm6_zen_layers_f16.h5"),
                       ("board", "TestData/real/vits14_board_small.h5"),
                       ("hostile", "TestData/synthetic/report/hostile_tokens.h5")]:
        reports[name] = os.path.join(scratch, name + ".html")
        extra = ["--image", "TestData/real/vits14_board_input.ppm"] if name == "board" else []
        run(a.bin, "report", dump, "-o", reports[name], "-q", *extra)
    # Over --max-report-size: the matrices pooled 2×2.
    reports["pooled"] = os.path.join(scratch, "pooled.html")
    run(a.bin, "report", "TestData/real/minilm6_zen_layers_f16.h5", "--max-report-size", "100K", "-o",
        reports["pooled"], "-q")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, args=["--no-sandbox"])
        for name, path in reports.items():
            for viewport in [(1280, 800), (390, 844)]:
                page, log = open_page(browser, path, viewport)
                for tab in page.eval_on_selector_all("nav button", "bs => bs.map(b => b.id.slice(4))"):
                    page.click("#tab-" + tab)
                page.wait_for_timeout(100)
                check(not log["console"], f"{name} at {viewport}: no console error or warning {log['console']}")
                check(log["requests"] == ["file://" + path],
                      f"{name} at {viewport}: no request but the page {log['requests']}")
                widest = 0
                for tab in page.eval_on_selector_all("nav button", "bs => bs.map(b => b.id.slice(4))"):
                    page.click("#tab-" + tab)
                    widest = max(widest, page.evaluate("document.documentElement.scrollWidth"))
                check(widest <= viewport[0], f"{name} at {viewport}: no view wider than the window ({widest} px; "
                      "wide parts scroll in their own box)")
                page.close()

        # The head view's values are the tokens command's.
        page, log = open_page(browser, reports["zen"])
        page.click("#entropy-grid td[data-layer='2'][data-head='3']")
        page.click("#tab-head-view")
        for query in [0, 3, 25]:
            page.hover(f".hv-query[data-index='{query}']")
            shown = " ".join(page.locator("#hv-values li").all_inner_texts())
            printed = run(a.bin, "tokens", "TestData/real/minilm6_zen_layers_f16.h5", "--layer", "2", "--head", "3",
                          "--query", str(query), "--color", "never", "-q").strip()
            check(shown == printed, f"head view, layer 2 head 3 query {query}: the values tokens prints\n"
                                    f"  page:   {shown[:160]}\n  tokens: {printed[:160]}")

        # Clicking an entropy cell selects that head everywhere.
        page.click("#tab-overview")
        page.click("#entropy-grid td[data-layer='4'][data-head='7']")
        for tab in ["model-view", "matrix-view", "overview"]:  # each view is drawn when shown
            page.click("#tab-" + tab)
        state = page.evaluate("""() => ({
            body: [document.body.dataset.layer, document.body.dataset.head],
            row: [...document.querySelectorAll('#stats-table tr.selected')].map(r => [r.dataset.layer, r.dataset.head]),
            cell: [...document.querySelectorAll('#entropy-grid td.selected')]
                .map(c => [c.dataset.layer, c.dataset.head]),
            model: [...document.querySelectorAll('#model-grid canvas.selected')]
                .map(c => [c.dataset.layer, c.dataset.head]),
            matrix: [document.getElementById('matrix-layer').selectedOptions[0].textContent,
                     document.getElementById('matrix-head').selectedOptions[0].textContent],
            heads: [...document.querySelectorAll('#hv-heads input:checked')].map(b => b.dataset.head)})""")
        check(state["body"] == ["4", "7"] and state["row"] == [["4", "7"]] and state["cell"] == [["4", "7"]]
              and state["model"] == [["4", "7"]] and state["matrix"] == ["layer 4", "head 7"]
              and state["heads"] == ["7"],
              f"an entropy cell selects layer 4 head 7 in every view: {state}")
        # Keys: down a layer, right a head.
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowRight")
        check(page.evaluate("[document.body.dataset.layer, document.body.dataset.head]") == ["5", "8"],
              "arrow keys move to layer 5 head 8")
        page.click("#tab-head-view")
        page.hover(".hv-query[data-index='10']")
        page.mouse.move(0, 0)
        page.keyboard.press("Shift+ArrowLeft")
        active = page.evaluate("[...document.querySelectorAll('.hv-query.active')].map(e => e.dataset.index)")
        check(active == ["9"] and page.inner_text("#selection").endswith("token 9"),
              f"Shift+← moves to query token 9: {active}, {page.inner_text('#selection')}")
        if a.screenshots:
            os.makedirs(a.screenshots, exist_ok=True)
            shot = lambda name: page.screenshot(path=os.path.join(a.screenshots, name),
                                                clip={"x": 0, "y": 0, "width": 1100, "height": 640})
            page.click("#tab-overview")
            shot("report_overview.png")
            page.click("#tab-head-view")
            page.hover(".hv-query[data-index='3']")
            shot("report_head_view.png")
            page.mouse.move(0, 0)
            page.click("#tab-matrix-view")
            shot("report_matrix.png")
            page.click("#tab-rollout-view")
            page.click(".rollout-key[data-index='5']")
            shot("report_rollout.png")
        page.close()

        # The matrix of the maximum over heads: the value under the pointer is heatmap --head max's.
        page, log = open_page(browser, reports["zen"])
        page.click("#tab-matrix-view")
        page.select_option("#matrix-layer", "1")
        page.select_option("#matrix-head", "-2")
        box = page.locator("#matrix-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * (5.5 / 26), box["y"] + box["height"] * (3.5 / 26))
        heat = os.path.join(scratch, "zen_max.npy")
        run(a.bin, "heatmap", "TestData/real/minilm6_zen_layers_f16.h5", "--layer", "1", "--head", "max", "-o", heat,
            "-q")
        shape, values = npy(heat)
        readout = page.inner_text("#matrix-readout")
        check(readout.startswith("query 3 ") and readout.endswith(f"{values[3 * shape[1] + 5]:.4f}"),
              f"matrix, max of heads, layer 1, query 3, key 5: heatmap --head max's value: {readout}")
        page.close()

        # The rollout over the tokens: the CLI's rollout matrix, row by row.
        page, log = open_page(browser, reports["zen"])
        page.click("#tab-rollout-view")
        page.click(".rollout-key[data-index='3']")
        shown = [float(v) for v in page.eval_on_selector_all(".rollout-key", "ds => ds.map(d => d.dataset.value)")]
        matrix = os.path.join(scratch, "zen_rollout.npy")
        run(a.bin, "rollout", "TestData/real/minilm6_zen_layers_f16.h5", "-o", matrix, "-q")
        shape, values = npy(matrix)
        expected = values[3 * shape[1]:4 * shape[1]]
        worst = max(abs(x - y) for x, y in zip(shown, expected))
        check(len(shown) == shape[1] and worst == 0,
              f"rollout view, query 3: attninspect rollout's row 3 (max |Δ| {worst})")
        page.fill("#rollout-depth", "2")
        page.dispatch_event("#rollout-depth", "input")
        run(a.bin, "rollout", "TestData/real/minilm6_zen_layers_f16.h5", "--end-layer", "2", "-o", matrix, "-q")
        shape, values = npy(matrix)
        shown = [float(v) for v in page.eval_on_selector_all(".rollout-key", "ds => ds.map(d => d.dataset.value)")]
        check(shown == list(values[3 * shape[1]:4 * shape[1]]), "rollout view at depth 2: rollout --end-layer 2, row 3")
        page.close()

        # The vision view: the brightest patch of the overlay is the CLI grid's argmax.
        page, log = open_page(browser, reports["board"])
        page.click("#tab-matrix-view")
        page.select_option("#matrix-layer", "2")
        page.select_option("#matrix-head", "-1")
        page.click("#tab-vision-view")
        grid = os.path.join(scratch, "board_grid.npy")
        run(a.bin, "grid", "TestData/real/vits14_board_small.h5", "--layer", "2", "--head", "mean", "-o", grid, "-q")
        shown = page.get_attribute("#vision-overlay", "data-argmax")
        check(shown == str(1 + argmax(npy(grid)[1])),
              f"vision, layer 2 mean, CLS: brightest token {shown}, the grid's argmax + 1")
        page.select_option("#vision-kind", "rollout")
        run(a.bin, "rollout", "TestData/real/vits14_board_small.h5", "--view", "grid", "-o", grid, "-q")
        shown = page.get_attribute("#vision-overlay", "data-argmax")
        check(shown == str(1 + argmax(npy(grid)[1])),
              f"vision, rollout of 3 layers: brightest token {shown}, the CLI's")
        box = page.locator("#vision-box").bounding_box()
        page.mouse.click(box["x"] + box["width"] * (7.5 / 16), box["y"] + box["height"] * (5.5 / 16))
        check(page.inner_text("#selection").endswith("token 88"),
              f"a click on patch (5, 7) makes token 88 the query: {page.inner_text('#selection')}")
        run(a.bin, "rollout", "TestData/real/vits14_board_small.h5", "--view", "grid", "--token", "88", "-o", grid,
            "-q")
        shown = page.get_attribute("#vision-overlay", "data-argmax")
        check(shown == str(1 + argmax(npy(grid)[1])),
              f"vision, rollout of token 88: brightest token {shown}, the CLI's")
        if a.screenshots:
            page.click("#tab-vision-view")
            page.select_option("#vision-kind", "rollout")
            page.screenshot(path=os.path.join(a.screenshots, "report_vision.png"),
                            clip={"x": 0, "y": 0, "width": 1100, "height": 640})
            page.click("#tab-model-view")
            page.wait_for_timeout(100)
            page.screenshot(path=os.path.join(a.screenshots, "report_model_view.png"),
                            clip={"x": 0, "y": 0, "width": 1100, "height": 640})
        page.close()

        # Pooled: cells named by their tokens, the head view says why it is empty, the values the pooled means.
        page, log = open_page(browser, reports["pooled"])
        page.click("#tab-matrix-view")
        labels = page.locator("#matrix-keys .tok").all_inner_texts()
        check(labels[:2] == ["0–1", "2–3"] and labels[-1] == "24–25" and len(labels) == 13,
              f"pooled matrix: 13 cells named by their tokens {labels[:3]}…{labels[-1:]}")
        page.click("#tab-head-view")
        check("pooled 2×2" in page.inner_text("#hv-note") and page.locator(".hv-query").count() == 0,
              "pooled: the head view says it needs tokens, and shows none")
        check(not log["console"], f"pooled: no console error {log['console']}")
        page.close()

        # A hostile token is text.
        page, log = open_page(browser, reports["hostile"])
        page.click("#tab-head-view")
        texts = page.locator(".hv-query").all_inner_texts()
        check(texts[1] == "</script><script>alert(1)</script>" and texts[2] == "<img src=x onerror=alert(2)>"
              and texts[4] == "\\u{202e}evil", f"hostile tokens shown as their text: {texts}")
        page.hover(".hv-query[data-index='2']")
        check(not log["dialogs"], f"no script from a token ran: {log['dialogs']}")
        check(page.evaluate("document.querySelectorAll('img').length") == 0, "no element made from a token")
        check(page.evaluate("document.querySelectorAll('script').length") == 2, "only the page's two script elements")
        page.close()
        browser.close()
    if failures:
        print(f"{len(failures)} browser checks failed", file=sys.stderr)
        return 1
    print("all browser checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
