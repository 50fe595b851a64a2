"""Test-wide settings: one torch thread keeps small models fast and results reproducible."""

import torch

torch.set_num_threads(1)
