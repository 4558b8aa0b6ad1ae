"""Bounded load test of a running `orthoepy serve` on this machine: counts per status code and latency percentiles.

Starts nothing itself. For each concurrency level C (default 1, 2 and 4 clients), sends the bundled demo sample
N times, C at a time, to a loopback URL only, and reports p50/p95 latency (seconds) and throughput per level; it
stops sending once the time budget is spent.

    orthoepy serve --model DIR --port 8000 --workers 2 &
    python recipes/local/service_load.py --url http://127.0.0.1:8000/v1/assess -n 24 -c 1,2,4
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
    parser.add_argument("-c", "--concurrency", type=concurrency_levels, default=(1, 2, 4),
                        help=f"comma-separated levels of requests in flight, each 1-{MAX_CONCURRENCY} (default: 1,2,4)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per level after which no new request is sent")
    args = parser.parse_args(argv)
    if not is_loopback(urlsplit(args.url).hostname):
        parser.error(f"refusing a non-loopback host in {args.url}: this load test only targets this machine")
    if not 1 <= args.requests <= MAX_REQUESTS or not all(1 <= c <= MAX_CONCURRENCY for c in args.concurrency):
        parser.error(f"--requests must be 1-{MAX_REQUESTS} and each --concurrency level 1-{MAX_CONCURRENCY}")
    reports = [run(args.url, args.requests, level, args.timeout, args.budget) for level in args.concurrency]
    print(json.dumps(reports, indent=1))
    print(format_table(reports), file=sys.stderr)
    return 0 if all(r["status_counts"].get("200") for r in reports) else 1


def concurrency_levels(text: str) -> tuple[int, ...]:
    """'1,2,4' -> (1, 2, 4); argparse reports a ValueError as a usage error."""
    levels = tuple(int(part) for part in text.split(",") if part.strip())
    if not levels:
        raise ValueError("no concurrency level given")
    return levels


def format_table(reports: list[dict]) -> str:
    lines = [f"{'clients':>7} {'ok/s':>6} {'p50 s':>7} {'p95 s':>7} {'max s':>7}  statuses"]
    for r in reports:
        lines.append(f"{r['concurrency']:>7} {r.get('ok_per_s', 0):6.2f} {r.get('p50_s', float('nan')):7.2f} "
                     f"{r.get('p95_s', float('nan')):7.2f} {r.get('max_s', float('nan')):7.2f}  {r['status_counts']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
