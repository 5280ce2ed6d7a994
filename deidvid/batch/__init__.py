"""Datasets, not files: many inputs, a run manifest, resume, parallel workers and Ray.

find inputs (``discover``) -> skip what the manifest says is done (``manifest``) -> run
one job per video (``jobs``) on an engine (``pool``: in this process or worker processes;
``ray_engine``: tasks on a Ray cluster) -> record each result in the manifest.
"""
