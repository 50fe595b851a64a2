"""Finetune: the no-memory baseline."""

from __future__ import annotations

from continual.plugin import Plugin

__all__ = ["Finetune"]


class Finetune(Plugin):
    """Train on each experience as it comes, keeping nothing from the past.

    What it stores: nothing beyond the model and its optimizer state, which
    the learner charges to the ``model`` and ``optimizer`` accounts. It is the
    lower bound every memory-using strategy should beat.

    Examples
    --------
    >>> from strategies import Finetune
    >>> Finetune().memory_items()
    {}
    """
