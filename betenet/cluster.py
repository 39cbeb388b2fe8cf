"""Dask clients for the parallel stages (many QE calculations, many bootstrap members).

One function, :func:`get_client`, turns a :class:`betenet.config.DaskConfig` into a
``dask.distributed.Client``: an existing scheduler (``scheduler_address``), a dask-jobqueue
cluster (``jobqueue="slurm"`` etc.), or a ``LocalCluster`` by default.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from .config import DaskConfig

__all__ = ["get_client", "dask_client", "QUIET_MONITORING"]

#: Dask settings of a LocalCluster with ``DaskConfig.quiet_monitoring`` (see there): no statistical
#: profiler, no 20 ms event-loop tick, system metrics every 5 s.
QUIET_MONITORING = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


def get_client(cfg: DaskConfig):
    """Create a ``distributed.Client`` for ``cfg`` (caller closes it; see :func:`dask_client`)."""
    from dask.distributed import Client, LocalCluster

    if cfg.scheduler_address:
        return Client(cfg.scheduler_address)
    if cfg.jobqueue:
        try:
            import dask_jobqueue
        except ImportError as exc:  # pragma: no cover - optional extra
            raise ImportError("DaskConfig.jobqueue needs dask-jobqueue: pip install 'betenet[cluster]'") from exc
        cls = {
            "slurm": dask_jobqueue.SLURMCluster,
            "pbs": dask_jobqueue.PBSCluster,
            "sge": dask_jobqueue.SGECluster,
            "lsf": dask_jobqueue.LSFCluster,
        }[cfg.jobqueue]
        cluster = cls(**dict(cfg.jobqueue_kwargs))
        cluster.scale(jobs=cfg.n_jobs)
        return Client(cluster)
    import dask

    # the workers inherit the configuration in force when the cluster starts (the nannies pass it on)
    with dask.config.set(QUIET_MONITORING if cfg.quiet_monitoring else {}):
        cluster = LocalCluster(
            n_workers=cfg.n_workers,
            threads_per_worker=cfg.threads_per_worker,
            processes=cfg.processes,
            dashboard_address=":0",  # any free port: never collides with another local cluster
        )
    return Client(cluster)


@contextlib.contextmanager
def dask_client(cfg: DaskConfig) -> Iterator[object]:
    """Context manager around :func:`get_client` that closes the client and a cluster it started."""
    client = get_client(cfg)
    try:
        yield client
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and not cfg.scheduler_address:
            cluster.close()
