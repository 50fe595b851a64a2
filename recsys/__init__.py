"""recsys: recommenders, compressed embedding tables and DSL under the byte budget.

Backbones :class:`MF` and :class:`LightGCN` share one joint embedding table reached through ID
mappers: :class:`Full`, :class:`ModuloHash`, :class:`DoubleHash`, :class:`FrequencyHash`,
:class:`GraphHash` (Louvain communities of the bipartite training graph) and
:class:`DoubleGraphHash`. The table is dense or, with DSL (:class:`SparseTable` and
:class:`DynamicSparsity`), a packed bitmask plus values with a constant number of nonzeros.
:func:`evaluate` ranks every item for every user (Recall@K, NDCG@K). :class:`Recommender` is the
scikit-learn face; its ``accountant_`` charges the table, the maps, the optimizer state and, for
LightGCN, the graph.
"""

from recsys.dsl import DenseTable, DynamicSparsity, SparseTable, cosine_ratio
from recsys.graphhash import DoubleGraphHash, GraphHash, cluster_bipartite
from recsys.mappers import DoubleHash, FrequencyHash, Full, IdMapper, ModuloHash, remap_table
from recsys.metrics import evaluate
from recsys.models import MF, LightGCN, normalized_adjacency
from recsys.recommender import Recommender
from recsys.sampling import NegativeSampler
from recsys.training import TrainReport, bpr_loss, train_bpr

__all__ = [
    "MF",
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
    "Recommender",
    "SparseTable",
    "TrainReport",
    "bpr_loss",
    "cluster_bipartite",
    "cosine_ratio",
    "evaluate",
    "normalized_adjacency",
    "remap_table",
    "train_bpr",
]
