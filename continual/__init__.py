"""continual: byte-level memory accounting and the continual-learning core.

Every byte a learner stores is counted against one budget. :func:`nbytes`
measures payload bytes, deduplicating tensors and arrays that share memory, and
every Python object of a model wrapped in :class:`PythonGraph` (a river model);
:class:`MemoryAccountant` charges every tracked component against a budget and
raises :class:`BudgetExceededError` with the ledger when it does not fit.
:class:`Learner` drives a model and its :class:`Plugin` strategies over a
stream and fills a :class:`ScoreMatrix`. :class:`BudgetedEstimator` is the
scikit-learn base of every estimator (transactional ``partial_fit``, seeding,
accounting), :func:`save` and :func:`load` write and read its checkpoints, and
:func:`evaluate_stream` is the evaluation protocol of every domain. :class:`LazySamples` holds
the rows of a torch ``Dataset`` that a payload reads only when it trains, predicts or stores.
:func:`resolve_device` and :class:`Precision` are where training runs and in which precision.
"""

from continual.accountant import BudgetExceededError, Ledger, MemoryAccountant, Snapshot
from continual.bitmask import BitMask
from continual.budget import format_bytes, parse_budget, parse_budgets
from continual.checkpoint import load, save
from continual.devices import resolve_device
from continual.estimator import BudgetedEstimator
from continual.evaluation import ScoreMatrix, auc_a, auc_l, auc_over_budgets
from continual.exemplars import ExemplarStore
from continual.learner import Learner
from continual.measure import PythonGraph, nbytes
from continual.plugin import Plugin
from continual.precision import Precision
from continual.protocol import evaluate_stream
from continual.samples import LazySamples

__all__ = [
    "BitMask",
    "BudgetExceededError",
    "BudgetedEstimator",
    "ExemplarStore",
    "LazySamples",
    "Learner",
    "Ledger",
    "MemoryAccountant",
    "Plugin",
    "Precision",
    "PythonGraph",
    "ScoreMatrix",
    "Snapshot",
    "auc_a",
    "auc_l",
    "auc_over_budgets",
    "evaluate_stream",
    "format_bytes",
    "load",
    "nbytes",
    "parse_budget",
    "parse_budgets",
    "resolve_device",
    "save",
]
