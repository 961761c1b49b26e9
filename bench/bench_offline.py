"""How long `fetch` takes to give up when no host answers (the machine is offline).

    .venv/bin/python bench/bench_offline.py [--urls 2000] [--hosts 200] [--retries 3]

Every URL names one of `--hosts` closed ports on 127.0.0.1 (refused at once, as an offline
machine refuses or fails DNS at once), spread round-robin. Prints the seconds until fetch_all
returned, the outcomes it gave (failures the caller would record) and whether the run was
called offline. With the default backoff (0.5 s, doubling) each URL of a run that walks the
whole list costs its retries until its host is marked down.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from mediatool.config import FetchSettings
from mediatool.fetch import Fetcher
from mediatool.models import FetchJob
from mediatool.testing import closed_ports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--retries", type=int, default=3)
    args = parser.parse_args(argv)
    ports = closed_ports(args.hosts)
    urls = [f"http://127.0.0.1:{ports[i % len(ports)]}/{i}.jpg" for i in range(args.urls)]
    jobs = [FetchJob(origin_url=url, candidates=(url,)) for url in urls]
    settings = FetchSettings(allow_private=True, retries=args.retries)
    with tempfile.TemporaryDirectory() as temp:
        started = time.perf_counter()
        with Fetcher(settings, Path(temp)) as fetcher:
            outcomes = list(fetcher.fetch_all(jobs))
            offline = getattr(fetcher, "offline", False)  # absent before the offline stop
        seconds = time.perf_counter() - started
    print(
        f"{args.urls} URLs on {args.hosts} refusing hosts, retries {args.retries}: "
        f"{seconds:.2f} s, {len(outcomes)} failures to record, offline={offline}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
