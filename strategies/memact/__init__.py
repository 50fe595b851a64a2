"""Memory-as-Action: learned context curation with DCPO, under the byte budget.

An agent's working memory (:class:`WorkingMemory`, charged to the shared
:class:`continual.MemoryAccountant` as token bytes or UTF-8 text) is edited by the agent itself
with the ``prune_context`` tool (:func:`prune_context`) or Mem0-style item operations
(:class:`ItemEdit`). A tiny causal transformer (:class:`TinyCurationPolicy`) learns when and what
to delete with DCPO (:class:`DCPOTrainer`) after a behaviour-cloning warm start from a heuristic
curator; :class:`MemoryAsAction` is its budgeted estimator (``partial_fit`` learns a stream of
episodes; ``budget`` charges the learner's stored bytes, ``context_budget`` caps the agent's
context).
"""

from strategies.memact.codec import RecallCodec
from strategies.memact.curators import (
    CURATORS,
    FIFOCurator,
    KeepEverything,
    Mem0Curator,
    QueriedKeysCurator,
    RecencyCurator,
    make_curator,
)
from strategies.memact.dcpo import (
    DCPOTrainer,
    Segment,
    build_segments,
    clipped_pg_loss,
    sample_segments,
    segment_advantages,
    segment_batch,
)
from strategies.memact.edits import (
    ITEM_TOOLS,
    PRUNE_TOOL,
    ItemEdit,
    apply_item_edit,
    execute_call,
    prune_context,
)
from strategies.memact.estimator import MemoryAsAction, as_episodes
from strategies.memact.evaluation import evaluate_policy
from strategies.memact.policy import (
    ChatModelPolicy,
    CurationPolicy,
    CurationState,
    TinyCurationPolicy,
    legal_mask,
    prune_turn,
)
from strategies.memact.rollout import (
    EDIT_INSTRUCTIONS,
    ContextSnapshot,
    Trajectory,
    read_answer,
    run_episode,
)
from strategies.memact.working_memory import KVCacheCost, Message, ToolCall, WorkingMemory

__all__ = [
    "CURATORS",
    "EDIT_INSTRUCTIONS",
    "ITEM_TOOLS",
    "PRUNE_TOOL",
    "ChatModelPolicy",
    "ContextSnapshot",
    "CurationPolicy",
    "CurationState",
    "DCPOTrainer",
    "FIFOCurator",
    "ItemEdit",
    "KVCacheCost",
    "KeepEverything",
    "Mem0Curator",
    "MemoryAsAction",
    "Message",
    "QueriedKeysCurator",
    "RecallCodec",
    "RecencyCurator",
    "Segment",
    "TinyCurationPolicy",
    "ToolCall",
    "Trajectory",
    "WorkingMemory",
    "apply_item_edit",
    "as_episodes",
    "build_segments",
    "clipped_pg_loss",
    "evaluate_policy",
    "execute_call",
    "legal_mask",
    "make_curator",
    "prune_context",
    "prune_turn",
    "read_answer",
    "run_episode",
    "sample_segments",
    "segment_advantages",
    "segment_batch",
]
