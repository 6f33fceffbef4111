"""Headless batch explanation: from one scan to a whole cohort, in this process or on Dask.

``explain_cohort(subjects, model_card, out_dir, ...)`` explains every subject with the single-scan
workflow (``jobs.compute``) and writes per-subject maps, region tables and labelled PNGs, then the
cohort's subjects × regions tables, group mean/std maps and region gain; ``neurorelevance explain``
is its command line. By default everything runs in this process; ``workers=N`` starts a Dask
LocalCluster, ``scheduler=ADDRESS`` joins a running cluster (see docs/batch.md).

- :mod:`.subjects`, :mod:`.scans`   who is explained and how their scans are read
- :mod:`.options`                    the checked settings of a run and their key
- :mod:`.executor`, :mod:`.worker`   where tasks run; the model loaded once per process
- :mod:`.task`, :mod:`.outputs`      one subject's work, its files and completion marker
- :mod:`.group`, :mod:`.summary`     cohort tables and maps; the summary
- :mod:`.run`                        :func:`explain_cohort`; :mod:`.cli` the ``explain`` command
- :mod:`.activations`                the cohort decomposition's activations on the same executor
"""
from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "explain_cohort": "run", "CohortExplanation": "run",
    "read_subjects": "subjects", "Subject": "subjects", "read_scan": "scans",
    "BatchOptions": "options", "InProcessExecutor": "executor", "DaskExecutor": "executor",
    "make_executor": "executor", "ModelSource": "worker", "distributed_collector": "activations",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
