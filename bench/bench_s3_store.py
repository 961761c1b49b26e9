"""Benchmark `fetch` into an s3:// cache (moto's S3 server on loopback) against the folder cache.

    .venv/bin/python bench/bench_s3_store.py [--n 200] [--size-kb 40] [--s3-latency-ms 20]
        [--verify-threads 8]

One post names `--n` distinct JPEGs (about `--size-kb` each, half of them wide enough for
thumbnails) on the local origin server. Rows printed, for the folder cache and the bucket:
the first fetch (download, store, analyze, thumbnails, upload), a re-run (nothing to do) and
`verify` (every original read back and hashed, `--verify-threads` at a time), with seconds and,
for the bucket, the requests moto answered by method. moto waits `--s3-latency-ms` before each
answer, as a real endpoint's round trip would; it runs in this process and shares its cores, so
the bucket rows also include the server's own CPU time. They model an object store, they do not
measure a real S3.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.config import FetchSettings, Settings
from mediatool.pipeline import run_fetch, run_verify, verifying
from mediatool.testing import OriginServer


def jpeg(index: int, size_kb: int) -> bytes:
    """A noisy JPEG of about `size_kb` KB, its own bytes for each index."""
    side = 64 if index % 2 else 400
    while True:
        buffer = io.BytesIO()
        Image.effect_noise((side, side), 40 + index % 50).convert("RGB").save(buffer, "JPEG")
        data = buffer.getvalue()
        if len(data) >= size_kb * 1000 or side > 2000:
            comment = f"bench {index}".encode()
            return (
                data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]
            )
        side = int(side * 1.3)


def start_moto(latency_ms: float) -> tuple[Any, list[str]]:
    """moto's S3 server on a free loopback port, recording each request's method and waiting
    `latency_ms` before each answer (a real endpoint's round trip)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    methods: list[str] = []
    app = DomainDispatcherApplication(create_backend_app)

    def recorded(environ: dict[str, Any], start_response: Any) -> Any:
        methods.append(environ["REQUEST_METHOD"])
        time.sleep(latency_ms / 1000)
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, recorded, True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, methods


def timed_fetch(post: Path, settings: Settings) -> tuple[float, int]:
    started = time.perf_counter()
    summary = run_fetch([post], settings, say=lambda line: None)
    return time.perf_counter() - started, summary.downloaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--size-kb", type=int, default=40)
    parser.add_argument("--s3-latency-ms", type=float, default=20.0)
    parser.add_argument("--verify-threads", type=int, default=verifying.VERIFY_THREADS)
    args = parser.parse_args()
    verifying.VERIFY_THREADS = args.verify_threads
    import boto3

    server, methods = start_moto(args.s3_latency_ms)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        NO_PROXY="127.0.0.1",
    )
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    with tempfile.TemporaryDirectory() as tmp, OriginServer() as origin:
        folder = Path(tmp)
        lines = []
        for index in range(args.n):
            origin.add(f"/{index}.jpg", jpeg(index, args.size_kb), content_type="image/jpeg")
            lines.append(f"![]({origin.url(f'/{index}.jpg')})\n")
        post = folder / "post.md"
        post.write_text("".join(lines))
        fetch = FetchSettings(allow_private=True)
        runs = {
            "folder": Settings(cache_dir=folder / "cache", fetch=fetch),
            "s3": Settings(
                cache_url="s3://bench/blog", manifest_path=folder / "m.sqlite", fetch=fetch
            ),
        }
        print(f"{'cache':8} {'run':8} {'seconds':>8} {'downloaded':>10}  s3 requests")
        for name, settings in runs.items():
            for run in ("first", "re-run"):
                methods.clear()
                seconds, downloaded = timed_fetch(post, settings)
                counts = dict(Counter(methods)) if name == "s3" else ""
                print(f"{name:8} {run:8} {seconds:8.2f} {downloaded:10}  {counts}")
            methods.clear()
            started = time.perf_counter()
            assert run_verify(settings, say=lambda line: None).ok
            seconds = time.perf_counter() - started
            counts = dict(Counter(methods)) if name == "s3" else ""
            print(f"{name:8} {'verify':8} {seconds:8.2f} {'-':>10}  {counts}")
    server.shutdown()


if __name__ == "__main__":
    main()
