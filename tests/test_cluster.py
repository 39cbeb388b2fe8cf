"""betenet.cluster: the LocalCluster's monitoring settings reach the worker processes."""

from __future__ import annotations

import pytest

from betenet.cluster import dask_client
from betenet.config import DaskConfig


def _monitoring(dask_worker=None, dask_scheduler=None):
    import dask

    srv = dask_worker or dask_scheduler
    pcs = srv.periodic_callbacks
    return {
        "profile": "profile" in pcs,
        "tick_ms": pcs["tick"].callback_time,
        "monitor_ms": pcs["monitor"].callback_time,
        "profile_enabled": dask.config.get("distributed.worker.profile.enabled"),
    }


@pytest.mark.parametrize("quiet", [True, False])
def test_quiet_monitoring_reaches_spawned_workers(quiet):
    import dask
    import distributed  # noqa: F401  (loads distributed's configuration defaults)

    before = dask.config.get("distributed.worker.profile.enabled")
    cfg = DaskConfig(n_workers=1, threads_per_worker=1, processes=True, quiet_monitoring=quiet)
    with dask_client(cfg) as client:
        (worker,) = client.run(_monitoring).values()
        sched = client.run_on_scheduler(_monitoring)
    if quiet:
        assert worker == {"profile": False, "tick_ms": 1000, "monitor_ms": 5000, "profile_enabled": False}
        assert (sched["tick_ms"], sched["monitor_ms"]) == (1000, 5000)
    else:  # dask's own defaults: 10 ms profiler, 20 ms tick, 500 ms system monitor
        assert worker == {"profile": True, "tick_ms": 20, "monitor_ms": 500, "profile_enabled": True}
    # the settings are scoped to the cluster's start: this process's configuration is unchanged
    assert dask.config.get("distributed.worker.profile.enabled") == before
