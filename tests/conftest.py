"""Studies that several test modules read: each is run once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import tinystudy


@pytest.fixture(scope="session")
def performance_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny study with every scenario (Server's search included) and two rounds, run to
    completion; tests read it and add only files of their own (a report)."""
    from tests.test_workflow import snakemake

    root = tmp_path_factory.mktemp("performance")
    tinystudy.build(
        root,
        batch_sizes=(1, 2),
        scenarios=["FixedBatch", "SingleStream", "MultiStream", "Server", "Offline"],
        server={
            "latency_bound_ms": 20.0,
            "latency_percentile": 0.9,
            "workers": 1,
            "max_batch": 2,
            "max_wait_ms": 0.5,
            "search_steps": 1,
        },
        repeats=2,
        timing={
            "warmup": 1,
            "min_duration_s": 0.2,
            "min_queries": 5,
            "max_duration_s": 2,
            "target_ci_rel": 0.02,
        },
    )
    result = snakemake(root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root
