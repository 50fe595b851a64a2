"""tpp: neural temporal point processes and PromptTPP under the byte budget.

:class:`NHP` (continuous-time LSTM) and :class:`AttNHP` (attention over events and query-time
states) give intensities at any times in batched tensor operations; :func:`sequence_log_likelihood`
is the log-likelihood (first event conditioned on, midpoint-rule integral) and
:func:`thinning_samples` draws next events by Ogata thinning. :class:`PromptPool` is PromptTPP's
continuous-time retrieval prompt pool. The estimators :class:`NeuralTPP` (strategies finetune,
retrain, pretrain, ewc, replay, each a set of :class:`~continual.Plugin`) and :class:`PromptTPP`
are :class:`~continual.BudgetedEstimator`: one ``partial_fit`` learns one window of
:class:`~streams.EventSequences` through the :class:`~continual.Learner`, under a
:class:`~continual.MemoryAccountant`, and ``evaluate(stream)`` fills the score matrices of the
streaming protocol.
"""

from tpp.attnhp import AttNHP
from tpp.batches import EventBatch, event_batches, make_batch, ordered_batches
from tpp.estimator import TPPEstimator
from tpp.ewc import EWC
from tpp.likelihood import (
    integration_fractions,
    log_likelihood_from_intensities,
    sequence_log_likelihood,
    training_loss,
)
from tpp.metrics import event_scores, log_likelihood_per_event
from tpp.neural_tpp import NeuralTPP
from tpp.nhp import NHP
from tpp.poisson import PoissonTPP
from tpp.pretrain import Pretrain
from tpp.prompt_pool import PromptPool
from tpp.prompt_schedule import AlternateUpdates, FreezeBackbone
from tpp.prompttpp import PromptTPP
from tpp.replay import EventReservoir, SequenceReplay
from tpp.retrain import Retrain
from tpp.thinning import thinning_samples

__all__ = [
    "EWC",
    "NHP",
    "AlternateUpdates",
    "AttNHP",
    "EventBatch",
    "EventReservoir",
    "FreezeBackbone",
    "NeuralTPP",
    "PoissonTPP",
    "Pretrain",
    "PromptPool",
    "PromptTPP",
    "Retrain",
    "SequenceReplay",
    "TPPEstimator",
    "event_batches",
    "event_scores",
    "integration_fractions",
    "log_likelihood_from_intensities",
    "log_likelihood_per_event",
    "make_batch",
    "ordered_batches",
    "sequence_log_likelihood",
    "thinning_samples",
    "training_loss",
]
