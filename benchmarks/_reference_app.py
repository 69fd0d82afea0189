"""The reference of ``server.py``: a bare FastAPI app doing one SQLite INSERT per request.

It runs on the same stack as ``labledger serve``: one uvicorn process, uvicorn's default loop and
HTTP implementation (uvloop and httptools when installed), access log off. The INSERT runs inline
in an ``async`` endpoint on one connection in WAL mode with ``synchronous=NORMAL`` (one commit per
request), which is the floor this stack can reach for a durable write.

    python benchmarks/_reference_app.py --port 8100 --db /tmp/ref.sqlite3
"""

from __future__ import annotations

import argparse
import sqlite3
import uuid

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def make_app(db_path: str) -> FastAPI:
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/experiment")
    async def create(request: Request) -> JSONResponse:
        body = await request.body()
        item_id = uuid.uuid4().hex
        conn.execute("INSERT INTO items (id, body) VALUES (?, ?)", (item_id, body.decode()))
        return JSONResponse({"_id": item_id}, status_code=200)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.db), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
