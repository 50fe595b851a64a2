"""tpp: neural temporal point processes and PromptTPP under the byte budget.

:class:`NHP` (continuous-time LSTM) and :class:`AttNHP` (attention over events and query-time
states) give intensities at any times in batched tensor operations; :func:`sequence_log_likelihood`
is the log-likelihood (first event conditioned on, midpoint-rule integral) and
:func:`thinning_samples` draws next events by Ogata thinning. :class:`PromptPool` is PromptTPP's
continuous-time retrieval prompt pool. The scikit-learn faces :class:`NeuralTPP` (strategies
finetune, retrain, pretrain, ewc, replay) and :class:`PromptTPP` learn one window per
``partial_fit`` under a :class:`~continual.MemoryAccountant`. :func:`run_stream` fills the score
matrices of the streaming protocol.
"""

from tpp.attnhp import AttNHP
from tpp.data import EventArrays, EventBatch, as_event_arrays, make_batch
from tpp.estimator import TPPEstimator
from tpp.ewc import EWCPenalty
from tpp.likelihood import (
    integration_fractions,
    log_likelihood_from_intensities,
    sequence_log_likelihood,
)
from tpp.metrics import evaluate, log_likelihood_per_event
from tpp.neural_tpp import NeuralTPP
from tpp.nhp import NHP
from tpp.poisson import PoissonTPP
from tpp.prompt_pool import PromptPool
from tpp.prompttpp import PromptTPP
from tpp.replay import EventReservoir
from tpp.stream import run_stream, run_tpp_stream
from tpp.thinning import thinning_samples

__all__ = [
    "NHP",
    "AttNHP",
    "EWCPenalty",
    "EventArrays",
    "EventBatch",
    "EventReservoir",
    "NeuralTPP",
    "PoissonTPP",
    "PromptPool",
    "PromptTPP",
    "TPPEstimator",
    "as_event_arrays",
    "evaluate",
    "integration_fractions",
    "log_likelihood_from_intensities",
    "log_likelihood_per_event",
    "make_batch",
    "run_stream",
    "run_tpp_stream",
    "sequence_log_likelihood",
    "thinning_samples",
]
