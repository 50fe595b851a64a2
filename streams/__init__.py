"""streams: ordered, re-iterable streams of experiences for continual learning.

An :class:`Experience` is one unit of a stream (a task, a time window, a block of rows) with its
index, train and test payloads and metadata. A :class:`Stream` is an ordered sequence of them,
deterministic given its seed. This package builds streams from labelled arrays
(:func:`class_incremental`, :func:`split_digits`), from numpy, pandas and river
(:func:`from_arrays`, :func:`from_pandas`, :func:`from_river`) and from a task-free sequence cut
where a river drift detector fires (:func:`segment_by_drift`). It knows no models.
"""

from streams.adapters import from_arrays, from_pandas, from_river
from streams.avalanche import from_avalanche, to_avalanche
from streams.class_incremental import class_incremental
from streams.communities import planted_communities
from streams.digits import split_digits
from streams.drift import detect_drifts, segment_by_drift
from streams.episodes import Observation, RecallDifficulty, RecallEpisode, recall_stream
from streams.experience import Experience, Stream
from streams.interaction_streams import interaction_blocks
from streams.interactions import Interactions
from streams.recsys_loaders import load_interaction_table, load_lightgcn, read_lightgcn

__all__ = [
    "Experience",
    "Interactions",
    "Observation",
    "RecallDifficulty",
    "RecallEpisode",
    "Stream",
    "class_incremental",
    "detect_drifts",
    "from_arrays",
    "from_avalanche",
    "from_pandas",
    "from_river",
    "interaction_blocks",
    "load_interaction_table",
    "load_lightgcn",
    "planted_communities",
    "read_lightgcn",
    "recall_stream",
    "segment_by_drift",
    "split_digits",
    "to_avalanche",
]
