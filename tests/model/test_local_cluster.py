"""A local cluster of the replication runner does little of its own beside the replications."""

from functools import partial

import dask

from securecomm.model.replications import LOCAL_CLUSTER_QUIET, Runner


def test_a_local_clusters_workers_run_no_profiler_and_tick_slowly():
    # The worker in this process and the one in its own process read the same settings.
    with Runner(workers=2)._client() as client:
        client.wait_for_workers(2, timeout=120)
        for name, value in LOCAL_CLUSTER_QUIET.items():
            assert set(client.run(partial(dask.config.get, name)).values()) == {value}, name
    assert LOCAL_CLUSTER_QUIET["distributed.worker.profile.enabled"] is False
