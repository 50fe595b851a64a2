"""recsys: recommenders, compressed embedding tables and DSL under the byte budget.

Backbones :class:`MF` and :class:`LightGCN` share one joint embedding table reached through ID
mappers: :class:`Full`, :class:`ModuloHash`, :class:`DoubleHash`, :class:`FrequencyHash`,
:class:`GraphHash` (Louvain communities of the bipartite training graph) and
:class:`DoubleGraphHash`. The table is dense or, with DSL (:class:`SparseTable` and the
:class:`DynamicSparsity` plugin), a packed bitmask plus values with a constant number of
nonzeros. BPR trains on :class:`continual.Learner` (:func:`make_learner`). :func:`evaluate`
ranks every item for every user (Recall@K, NDCG@K). :class:`Recommender` is the budgeted
estimator; its ``accountant_`` charges the table, the maps, the optimizer state and, for
LightGCN, the graph.
"""

from recsys.dsl import DenseTable, DynamicSparsity, SparseTable, cosine_ratio, table_nbytes
from recsys.graphhash import DoubleGraphHash, GraphHash, cluster_bipartite
from recsys.mapper_specs import mapper_from_dict
from recsys.mappers import DoubleHash, FrequencyHash, Full, IdMapper, ModuloHash, remap_table
from recsys.metrics import evaluate
from recsys.models import MF, LightGCN, Representation, adjacency_nbytes, normalized_adjacency
from recsys.recommender import Recommender
from recsys.sampling import NegativeSampler
from recsys.time_budget import CpuTimeBudget
from recsys.training import (
    BPRLoss,
    PositivePairs,
    bpr_batches,
    bpr_forward,
    bpr_loss,
    make_learner,
)

__all__ = [
    "MF",
    "BPRLoss",
    "CpuTimeBudget",
    "DenseTable",
    "DoubleGraphHash",
    "DoubleHash",
    "DynamicSparsity",
    "FrequencyHash",
    "Full",
    "GraphHash",
    "IdMapper",
    "LightGCN",
    "ModuloHash",
    "NegativeSampler",
    "PositivePairs",
    "Recommender",
    "Representation",
    "SparseTable",
    "adjacency_nbytes",
    "bpr_batches",
    "bpr_forward",
    "bpr_loss",
    "cluster_bipartite",
    "cosine_ratio",
    "evaluate",
    "make_learner",
    "mapper_from_dict",
    "normalized_adjacency",
    "remap_table",
    "table_nbytes",
]
