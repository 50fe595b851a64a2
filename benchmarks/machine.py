"""The machine and software versions a benchmark's numbers were measured with."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["machine_info"]


def machine_info() -> dict[str, Any]:
    """Describe the machine and the software versions the numbers were measured with.

    Returns
    -------
    dict
        ``platform``, ``cpu_model``, ``cpu_count``, ``cpus_usable``, ``python``, ``torch``,
        ``numpy`` and ``torch_threads``.

    Examples
    --------
    >>> info = machine_info()
    >>> sorted(info)  # doctest: +NORMALIZE_WHITESPACE
    ['cpu_count', 'cpu_model', 'cpus_usable', 'numpy', 'platform', 'python', 'torch',
     'torch_threads']
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
