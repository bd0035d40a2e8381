"""Benchmark: the web lab on loopback — page loads, a cached comparison, 20 users at once.

Starts a real `securecomm serve --demo` process — the desk, its pages, the lab and the library in
one process — on a fresh data directory (one worker process for the lab's comparisons, in-process
replications), then measures, all over HTTP to 127.0.0.1:

1. the lab page: the HTML and the files it loads (CSS, htmx, lab.js), 20 times; and, where
   Debian's chromium is installed, the browser's own load time (navigation start → load event);
2. a cached comparison: the permanent link of a comparison already answered, 20 times;
3. 20 concurrent lab users, each opening the lab, typing a place, asking its own question
   (a Connecticut county, 2012, two policies, 2 replications, its own seed), following the progress
   until the answer, then opening the results and a chart's CSV. They share the one worker.

Prints each figure beside its target (issue 14): the lab page < 1 s, a cached comparison
< 200 ms, every one of the 20 users completes; throughput (comparisons per minute, requests/s)
and the p95 of the users' requests while the queue is full.

    .venv/bin/python bench/web_load.py [--users 20]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

TARGET_PAGE_SECONDS = 1.0
TARGET_CACHED_SECONDS = 0.2
REPEATS = 20
USER_DEADLINE_SECONDS = 600
CONNECTICUT = ("09001", "09003", "09005", "09007", "09009", "09011", "09013", "09015")
ASSETS = ("/assets/app.css", "/vendor/htmx.min.js", "/assets/lab.js")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def question(place: str, seed: int, replications: int = 2) -> str:
    return "/lab/compare?" + urlencode(
        [
            ("place", place),
            ("start", "2012-01-01"),
            ("end", "2012-12-31"),
            ("policies", "us/ice-request"),
            ("policies", "ct/trust-act-2013"),
            ("baseline", "us/ice-request"),
            ("replications", str(replications)),
            ("seed", str(seed)),
        ]
    )


def answered(client: httpx.Client, path: str, timings: list[float] | None = None) -> str:
    """Ask a question and follow its progress until the answer; the results page."""
    deadline = time.monotonic() + USER_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = client.get(path)
        if timings is not None:
            timings.append(time.perf_counter() - started)
        response.raise_for_status()
        if 'class="comparison"' in response.text:
            return response.text
        if "The run failed" in response.text:
            raise RuntimeError(f"the run failed: {path}")
        time.sleep(0.5)
    raise TimeoutError(f"no answer in {USER_DEADLINE_SECONDS} s: {path}")


def page_load(client: httpx.Client) -> float:
    started = time.perf_counter()
    client.get("/lab").raise_for_status()
    for asset in ASSETS:
        client.get(asset).raise_for_status()
    return time.perf_counter() - started


def browser_load(url: str) -> list[float] | None:
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        times = []
        for _ in range(5):
            context = browser.new_context()  # a cold cache each time
            page = context.new_page()
            page.goto(url + "/lab", wait_until="load")
            times.append(page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000)
            context.close()
        browser.close()
    return times


def user(base: str, index: int, results: dict[int, dict], timings: list[float], lock: threading.Lock) -> None:
    mine: list[float] = []
    started = time.perf_counter()
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for path in ("/lab", "/lab/places?place=" + "Hartford", "/lab/place-field?place=09003"):
                t = time.perf_counter()
                client.get(path).raise_for_status()
                mine.append(time.perf_counter() - t)
            text = answered(client, question(CONNECTICUT[index % len(CONNECTICUT)], 1000 + index), mine)
            key = text.split("/lab/runs/")[1].split("/")[0]
            t = time.perf_counter()
            client.get(f"/lab/runs/{key}/charts/funnel.csv").raise_for_status()
            mine.append(time.perf_counter() - t)
        results[index] = {"ok": True, "seconds": time.perf_counter() - started}
    except Exception as error:  # a user that fails is reported, not fatal to the others
        results[index] = {"ok": False, "seconds": time.perf_counter() - started, "error": repr(error)}
    with lock:
        timings.extend(mine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "securecomm", "serve", "--demo"),
                *("--port", str(port), "--data-dir", str(Path(data) / "desk")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.get("/lab").raise_for_status()
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            raise RuntimeError("securecomm serve did not start") from None
                        time.sleep(0.2)
                loads = [page_load(client) for _ in range(REPEATS)]
                browser = browser_load(base)
                first = time.perf_counter()
                answered(client, question("09001", 1, replications=3))
                first_seconds = time.perf_counter() - first
                cached = []
                for _ in range(REPEATS):
                    t = time.perf_counter()
                    answered(client, question("09001", 1, replications=3))
                    cached.append(time.perf_counter() - t)

            results: dict[int, dict] = {}
            timings: list[float] = []
            lock = threading.Lock()
            threads = [
                threading.Thread(target=user, args=(base, index, results, timings, lock)) for index in range(args.users)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)

    completed = [r for r in results.values() if r["ok"]]
    for index, result in sorted(results.items()):
        if not result["ok"]:
            print(f"user {index} failed: {result['error']}")
    page_p95, cached_p95 = percentile(loads, 0.95), percentile(cached, 0.95)
    print(f"web lab on loopback, 2 cores ({time.strftime('%Y-%m-%d')})")
    print(
        f"  lab page + CSS/htmx/lab.js   median {statistics.median(loads) * 1000:6.0f} ms  p95 {page_p95 * 1000:6.0f} ms"
        f"   target < {TARGET_PAGE_SECONDS * 1000:.0f} ms   {'OK' if page_p95 < TARGET_PAGE_SECONDS else 'MISSED'}"
    )
    if browser is not None:
        worst = max(browser)
        print(
            f"  lab page in chromium (load)  median {statistics.median(browser) * 1000:6.0f} ms  max {worst * 1000:6.0f} ms"
            f"   target < {TARGET_PAGE_SECONDS * 1000:.0f} ms   {'OK' if worst < TARGET_PAGE_SECONDS else 'MISSED'}"
        )
    print(f"  first answer (Fairfield County, 2 policies × 3 replications, 1 year): {first_seconds:.1f} s")
    print(
        f"  cached comparison            median {statistics.median(cached) * 1000:6.0f} ms  p95 {cached_p95 * 1000:6.0f} ms"
        f"   target < {TARGET_CACHED_SECONDS * 1000:.0f} ms   {'OK' if cached_p95 < TARGET_CACHED_SECONDS else 'MISSED'}"
    )
    all_done = len(completed) == args.users
    print(
        f"  {args.users} concurrent users: {len(completed)} completed in {wall:.1f} s"
        f"   target: all   {'OK' if all_done else 'MISSED'}"
    )
    print(
        f"    throughput {len(completed) / wall * 60:.1f} comparisons/min, {len(timings) / wall:.1f} requests/s;"
        f" users' requests p95 {percentile(timings, 0.95) * 1000:.0f} ms;"
        f" a user's wait for an answer p95 {percentile([r['seconds'] for r in completed], 0.95):.1f} s"
        if completed
        else "    no user completed"
    )
    ok = page_p95 < TARGET_PAGE_SECONDS and cached_p95 < TARGET_CACHED_SECONDS and all_done
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
