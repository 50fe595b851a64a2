"""streams: ordered, re-iterable streams of experiences for continual learning.

An :class:`Experience` is one unit of a stream (a task, a time window, a block of rows) with its
index, train and test payloads and metadata. A :class:`Stream` is an ordered sequence of them,
deterministic given its seed. This package builds streams from labelled arrays
(:func:`class_incremental`, :func:`split_digits`), from numpy, pandas, river and Avalanche
(:func:`from_arrays`, :func:`from_pandas`, :func:`from_river`, :func:`from_avalanche`) and from a
task-free sequence cut where a river drift detector fires (:func:`segment_by_drift`). Each domain
has its payload: event sequences for temporal point processes (:class:`EventSequences`, the
EasyTPP loader, calendar windows, a Hawkes simulator), interactions for recommendation
(:class:`Interactions`, loaders, blocks, a planted-community generator) and recall episodes for
agents (:func:`recall_stream`). It knows no models.
"""

from streams.adapters import from_arrays, from_pandas, from_river
from streams.avalanche import from_avalanche, to_avalanche
from streams.calendar_windows import calendar_windows
from streams.class_incremental import class_incremental
from streams.communities import planted_communities
from streams.digits import split_digits
from streams.drift import detect_drifts, segment_by_drift
from streams.easytpp import as_event_sequences, load_easytpp
from streams.episodes import Observation, RecallDifficulty, RecallEpisode, recall_stream
from streams.events import EventSequences
from streams.experience import Experience, Stream
from streams.hawkes import HawkesProcess, hawkes_drift_stream, oracle_log_likelihood, random_hawkes
from streams.interaction_streams import RankingTest, interaction_blocks
from streams.interactions import Interactions
from streams.recsys_loaders import load_interaction_table, load_lightgcn, read_lightgcn

__all__ = [
    "EventSequences",
    "Experience",
    "HawkesProcess",
    "Interactions",
    "Observation",
    "RankingTest",
    "RecallDifficulty",
    "RecallEpisode",
    "Stream",
    "as_event_sequences",
    "calendar_windows",
    "class_incremental",
    "detect_drifts",
    "from_arrays",
    "from_avalanche",
    "from_pandas",
    "from_river",
    "hawkes_drift_stream",
    "interaction_blocks",
    "load_easytpp",
    "load_interaction_table",
    "load_lightgcn",
    "oracle_log_likelihood",
    "planted_communities",
    "random_hawkes",
    "read_lightgcn",
    "recall_stream",
    "segment_by_drift",
    "split_digits",
    "to_avalanche",
]
