"""Reading a running ``mlflow server`` over its REST API gives the same runs as reading its
backend store directly, whatever the page sizes."""

from __future__ import annotations

import pytest

from labledger.errors import InvalidInput
from labledger.runner.mlflow_server import read_mlflow_server
from labledger.runner.mlflow_store import MlflowRun, read_mlflow
from runner.mlflow_support import MlflowServer


def _comparable(run: MlflowRun) -> tuple[object, ...]:
    # MLflow may hold several values at one step; the two readers list them in either order
    metrics = {key: sorted(points) for key, points in run.metrics.items()}
    return (
        run.run_id,
        run.experiment_name,
        run.run_name,
        run.status,
        run.start_ms,
        run.end_ms,
        run.user,
        run.params,
        run.tags,
        metrics,
        run.non_finite,
    )


@pytest.mark.parametrize(
    ("page_size", "history_page_size"),
    [(1, 7), (1_000, 25_000)],
    ids=["one-item-pages", "default-pages"],
)
def test_the_rest_api_gives_the_runs_of_the_backend_store(
    mlflow_tracking_server: MlflowServer, page_size: int, history_page_size: int
) -> None:
    over_http = list(
        read_mlflow_server(
            mlflow_tracking_server.url, page_size=page_size, history_page_size=history_page_size
        )
    )
    direct = list(read_mlflow(f"sqlite:///{mlflow_tracking_server.database}"))
    assert [r.run_name for r in over_http] == ["lr=0.1", "lr=0.01", "crashed"]
    assert [_comparable(r) for r in over_http] == [_comparable(r) for r in direct]
    sweep = over_http[0]
    assert len(sweep.metrics["train/loss"]) == 300  # 43 pages of 7 when paged finely
    assert sweep.params == {"lr": "0.1", "optimizer": "adam", "layers": "3"}
    assert sweep.tags["team"] == "vision" and sweep.non_finite == 1  # the NaN, counted


@pytest.mark.parametrize("url", ["ftp://host/", "http://", "mlruns"])
def test_a_url_that_is_not_a_tracking_server_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="expected a tracking server URL like"):
        list(read_mlflow_server(url))
