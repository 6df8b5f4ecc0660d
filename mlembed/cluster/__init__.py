"""Encode, index and mine beyond one machine, on a Ray cluster.

Ray is the engine: Ray Data's ``map_batches`` over an actor pool encodes (the model loaded once per
actor), Ray tasks add vectors to index parts and search query shards; Ray retries what a killed worker
was doing. mlembed only decides the shards, so that every piece of work is a file written atomically and
a rerun skips what is done (:mod:`mlembed.cluster.encode`, :mod:`mlembed.cluster.index`,
:mod:`mlembed.cluster.knn`). Workers read and write paths: on several machines those must be on a file
system they all see (NFS, a mounted bucket), as the folders of a single-machine run are on one disk.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def connect(address: str | None = None) -> int:
    """Join the Ray cluster at ``address`` (``None``: ``$RAY_ADDRESS``, else a new local one on this
    machine's CPUs); returns the cluster's CPU count. Already connected: stays on that cluster.

    Example:
        >>> connect() >= 1  # doctest: +SKIP
        True
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise ImportError('--ray needs Ray: pip install "ray[data]" (or mlembed[scale])') from None
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # mlembed shows its own progress bars
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        log.info("connecting to Ray at %s", address or "a new local cluster")
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
    return int(ray.cluster_resources().get("CPU", 1))


def peak_rss_mb() -> float:
    """This process's peak resident set in MB (``VmHWM``), as workers report it back.

    Example:
        >>> peak_rss_mb() > 0
        True
    """
    from pathlib import Path

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
