"""Files through labledger's S3 object store against the same client library going straight to it.

An S3-compatible server (moto's standalone server, in its own process on loopback) holds the
bucket. First boto3 uploads and downloads the file directly (the reference, with the transfer
settings labledger uses; the download both with ranged GETs and as one stream, the faster
counting); then a real ``labledger serve`` with ``EXPERIMENT_BLOB_URL`` takes the
same size of file from ``ExperimentClient.upload_file`` (multipart POST, hashed on both sides)
and serves it back through ``download_file`` (streamed, digest checked). The server's RSS is
sampled every 50 ms during each transfer. Each measurement is the best of two rounds (new content
each round), the two ways taking turns. Printed: MB/s each way, the ratio to the reference, and
the server's peak RSS.

    python benchmarks/object_store.py             # 1 GB
    python benchmarks/object_store.py --quick     # 32 MB
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from _common import bench_env, free_port, heading, labledger_server, machine, rss_mb, table, workdir


def _moto(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (tmp / "moto.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    import httpx

    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=2)
            return proc, endpoint
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("moto's S3 server did not start")


class PeakRss:
    """Samples the RSS of ``pid`` on a thread while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pid))

    @contextmanager
    def sampling(self) -> Iterator[PeakRss]:
        self.peak = rss_mb(self.pid)
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self._stop.clear()


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _random_file(path: Path, size: int) -> None:
    chunk = 8 << 20
    with path.open("wb") as out:
        left = size
        while left > 0:
            out.write(os.urandom(min(chunk, left)))
            left -= chunk


def _stream_to(answer: dict[str, Any], dest: Path) -> None:
    with dest.open("wb") as out:
        for chunk in answer["Body"].iter_chunks(1 << 20):
            out.write(chunk)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32 MB (for CI)")
    parser.add_argument("--mb", type=int, default=None, help="file size in MB")
    parser.add_argument("--rounds", type=int, default=None, help="best of N (default 2; quick 1)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 2)
    size = (args.mb or (32 if args.quick else 1024)) * 1_000_000
    try:
        import boto3
        from boto3.s3.transfer import TransferConfig

        from labledger.archive.s3 import _CONCURRENCY, _PART
        from labledger.client import ExperimentClient
    except ImportError as exc:
        print(f"ERROR: {exc}: pip install -e '.[dev]'")
        return 1

    heading(f"Object store: a {size / 1e6:,.0f} MB file through labledger vs boto3 directly")
    print(f"machine: {machine()}; S3 server: moto (standalone, loopback)")
    credentials = {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
    }
    with workdir("objects") as tmp:
        moto, endpoint = _moto(tmp)
        try:
            s3 = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench-secret",
            )
            s3.create_bucket(Bucket="bench")
            config = TransferConfig(
                multipart_threshold=_PART, multipart_chunksize=_PART, max_concurrency=_CONCURRENCY
            )
            source = tmp / "payload.bin"
            _random_file(source, size)

            got = tmp / "direct.bin"
            back = tmp / "back.bin"
            times: dict[str, list[float]] = {
                k: [] for k in ("up", "ranged", "stream", "lup", "ldn")
            }
            peaks = {"lup": 0.0, "ldn": 0.0}
            srv = labledger_server(f"sqlite:///{tmp}/objects.sqlite3", tmp)
            srv.env = bench_env(
                {
                    **credentials,
                    "AWS_ENDPOINT_URL": endpoint,
                    "EXPERIMENT_BLOB_URL": "s3://bench/labledger",
                    "EXPERIMENT_DATA_DIR": str(tmp / "data"),
                }
            )
            with srv, ExperimentClient(srv.url, timeout=600) as client:
                experiment = client.start_experiment({"experiment_name": "Object store bench"})
                rss = PeakRss(srv.pid)
                idle = rss_mb(srv.pid)
                for round_ in range(rounds):
                    # new content each round, so that labledger cannot answer "stored already"
                    with source.open("r+b") as fh:
                        fh.write(round_.to_bytes(8, "big"))
                    times["up"].append(
                        _timed(lambda: s3.upload_file(str(source), "bench", "k", Config=config))
                    )
                    # two ways down: the transfer manager's parallel ranged GETs, and one
                    # streamed GET (moto slices a large object for every ranged GET)
                    times["ranged"].append(
                        _timed(lambda: s3.download_file("bench", "k", str(got), Config=config))
                    )
                    got.unlink()
                    times["stream"].append(
                        _timed(lambda: _stream_to(s3.get_object(Bucket="bench", Key="k"), got))
                    )
                    assert got.stat().st_size == size
                    got.unlink()
                    s3.delete_object(Bucket="bench", Key="k")

                    name = f"payload-{round_}"
                    with rss.sampling():
                        times["lup"].append(
                            _timed(
                                partial(client.upload_file, experiment.experiment_id, name, source)
                            )
                        )
                    peaks["lup"] = max(peaks["lup"], rss.peak)
                    with rss.sampling():
                        times["ldn"].append(
                            _timed(
                                partial(client.download_file, experiment.experiment_id, name, back)
                            )
                        )
                    peaks["ldn"] = max(peaks["ldn"], rss.peak)
                    assert back.stat().st_size == size
                    back.unlink()
                    for item in s3.list_objects_v2(Bucket="bench").get("Contents", []):
                        s3.delete_object(Bucket="bench", Key=item["Key"])  # free moto's memory
            up_direct, up_ledger, down_ledger = (min(times[k]) for k in ("up", "lup", "ldn"))
            down_ranged, down_stream = min(times["ranged"]), min(times["stream"])
            down_direct = min(down_ranged, down_stream)
            peak_up, peak_down = peaks["lup"], peaks["ldn"]
        finally:
            moto.terminate()
            moto.wait(30)

    mb = size / 1e6
    rows = [
        ["upload", f"{mb / up_direct:,.1f}", f"{mb / up_ledger:,.1f}",
         f"{up_direct / up_ledger:.2f}x", f"{peak_up:,.0f}"],
        ["download", f"{mb / down_direct:,.1f}", f"{mb / down_ledger:,.1f}",
         f"{down_direct / down_ledger:.2f}x", f"{peak_down:,.0f}"],
    ]  # fmt: skip
    print()
    print(
        table(["", "boto3 direct MB/s", "labledger MB/s", "x direct", "server peak RSS MiB"], rows)
    )
    print(
        f"direct download: {mb / down_ranged:,.1f} MB/s with ranged GETs (download_file), "
        f"{mb / down_stream:,.1f} MB/s as one streamed GET; the faster is the reference"
    )
    worst = min(up_direct / up_ledger, down_direct / down_ledger)
    peak = max(peak_up, peak_down)
    print(
        f"\nserver RSS idle {idle:,.0f} MiB, peak {peak:,.0f} MiB during transfers; "
        f"target >= 0.5x direct: {'met' if worst >= 0.5 else 'NOT met'} ({worst:.2f}x); "
        f"target < 200 MB RSS: {'met' if peak * 1.048576 < 200 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
