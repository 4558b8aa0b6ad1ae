"""Bounded load test of a running `orthoepy serve` on this machine: counts per status code and latency percentiles.

Starts nothing itself. Sends the bundled demo sample N times, C at a time, to a loopback URL only, and stops
sending once the time budget is spent.

    orthoepy serve --model DIR --port 8000 &
    python recipes/local/service_load.py --url http://127.0.0.1:8000/v1/assess -n 200 -c 8
"""
from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

SAMPLES = Path(__file__).resolve().parents[2] / "fusion" / "samples"
MAX_REQUESTS = 5000
MAX_CONCURRENCY = 64
NOT_SENT = "not sent (time budget spent)"


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def demo_request_body() -> tuple[bytes, str]:
    meta = json.loads((SAMPLES / "demo.json").read_text())
    audio = (SAMPLES / meta["audio"]).read_bytes()
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n{meta["text"]}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="{meta["audio"]}"\r\n'
        f"Content-Type: audio/flac\r\n\r\n".encode() + audio + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def send_one(url: str, body: bytes, content_type: str, timeout: float, deadline: float) -> tuple[str, float]:
    """(status, seconds); status is the HTTP code, or the error class for a failed connection."""
    if time.monotonic() > deadline:
        return NOT_SENT, 0.0
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status = str(response.status)
    except urllib.error.HTTPError as err:
        err.read()
        status = str(err.code)
    except (urllib.error.URLError, OSError) as err:
        status = f"error ({type(getattr(err, 'reason', err)).__name__})"
    return status, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def run(url: str, requests: int, concurrency: int, timeout: float, budget: float) -> dict:
    body, content_type = demo_request_body()
    deadline = time.monotonic() + budget
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        outcomes = list(pool.map(lambda _: send_one(url, body, content_type, timeout, deadline), range(requests)))
    wall = time.perf_counter() - started
    counts = collections.Counter(status for status, _ in outcomes)
    ok = sorted(seconds for status, seconds in outcomes if status == "200")
    report = {"url": url, "requests": requests, "concurrency": concurrency, "wall_s": round(wall, 2),
              "status_counts": dict(sorted(counts.items()))}
    if ok:
        report |= {"ok_per_s": round(len(ok) / wall, 2), "p50_s": round(percentile(ok, 50), 3),
                   "p95_s": round(percentile(ok, 95), 3), "max_s": round(ok[-1], 3)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/v1/assess")
    parser.add_argument("-n", "--requests", type=int, default=200, help=f"requests to send (1-{MAX_REQUESTS})")
    parser.add_argument("-c", "--concurrency", type=int, default=8, help=f"requests in flight (1-{MAX_CONCURRENCY})")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds after which no new request is sent")
    args = parser.parse_args(argv)
    if not is_loopback(urlsplit(args.url).hostname):
        parser.error(f"refusing a non-loopback host in {args.url}: this load test only targets this machine")
    if not 1 <= args.requests <= MAX_REQUESTS or not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--requests must be 1-{MAX_REQUESTS} and --concurrency 1-{MAX_CONCURRENCY}")
    report = run(args.url, args.requests, args.concurrency, args.timeout, args.budget)
    print(json.dumps(report, indent=1))
    return 0 if report["status_counts"].get("200") else 1


if __name__ == "__main__":
    sys.exit(main())
