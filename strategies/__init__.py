"""strategies: class-incremental strategies run under the shared byte budget.

Each strategy is a :class:`continual.plugin.Plugin` that sizes what it stores
from the accountant's headroom, and has a scikit-learn face.
"""

from strategies.backbones import MLP, DigitsConvNet, make_backbone
from strategies.classifiers import FinetuneClassifier, ReplayClassifier
from strategies.finetune import Finetune
from strategies.replay import Replay

__all__ = [
    "MLP",
    "DigitsConvNet",
    "Finetune",
    "FinetuneClassifier",
    "Replay",
    "ReplayClassifier",
    "make_backbone",
]
