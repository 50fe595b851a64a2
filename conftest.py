"""Test-wide settings: one torch thread keeps small models fast and results reproducible, and
hypothesis runs the same examples on every run (the 'ci' profile; each fuzz test sets only how
many). ``HYPOTHESIS_PROFILE=explore`` draws fresh examples instead, to search further."""

import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", deadline=None, derandomize=True, suppress_health_check=_SLOW_OK)
settings.register_profile("explore", deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
