"""The client's campaign/queue/result methods, sync and async, driving the real app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from labledger.client import AsyncExperimentClient, ExperimentClient
from labledger.errors import IntegrityError, LeaseLost, NotFound
from labledger.server.app import create_app
from labledger.settings import Settings
from labledger_fixtures import LiveServerFactory

SPEC = {"name": "c", "design": {"experiment_name": "t"}, "sweep": {"list": [{"n": 1}, {"n": 2}]}}


def test_async_client_claims_records_and_reports(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(db_url=sqlite_url, data_dir=tmp_path))
    data = tmp_path / "trace.bin"
    data.write_bytes(bytes(range(256)) * 4096)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncExperimentClient("http://test", transport=transport) as client:
            campaign = await client.create_campaign(SPEC)
            exp = await client.claim("w1")
            assert exp is not None and exp.worker_id == "w1"
            with pytest.raises(LeaseLost):
                await client.heartbeat(exp.experiment_id, "w2")
            await client.add_result(exp.experiment_id, "n2", 1)
            uploaded = await client.upload_file(exp.experiment_id, "trace", data)
            assert uploaded.size == data.stat().st_size
            digest = await client.download_file(exp.experiment_id, "trace", tmp_path / "copy.bin")
            assert digest == uploaded.digest
            assert (tmp_path / "copy.bin").read_bytes() == data.read_bytes()
            await client.finish_experiment(exp.experiment_id, worker_id="w1")
            md = await client.campaign_report(campaign.campaign_id, "md")
            assert "| completed | 1 |" in md and "| queued | 1 |" in md
            queue = await client.get_queue()
            assert queue["counts"] == {"queued": 1, "running": 0}

    asyncio.run(scenario())


def test_download_refuses_content_that_does_not_match_its_digest(
    live_server: LiveServerFactory, tmp_path: Path
) -> None:
    server = live_server(env={"EXPERIMENT_DATA_DIR": str(tmp_path / "data")})
    src = tmp_path / "a.txt"
    src.write_text("original")
    with ExperimentClient(server.url) as client:
        exp = client.start_experiment({"experiment_name": "files"})
        stored = client.upload_file(exp.experiment_id, "a", src)
        blob = tmp_path / "data" / "results"
        # damage the stored copy behind the server's back
        assert stored.digest is not None
        found = next(p for p in blob.rglob("*") if p.is_file() and stored.digest[2:] in p.name)
        found.chmod(0o644)
        found.write_text("tampered")
        with pytest.raises(IntegrityError, match="does not match"):
            client.download_file(exp.experiment_id, "a", tmp_path / "out.txt")
        assert not (tmp_path / "out.txt").exists()
        with pytest.raises(NotFound):
            client.download_file(exp.experiment_id, "missing", tmp_path / "out.txt")
