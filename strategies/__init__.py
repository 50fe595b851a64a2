"""strategies: class-incremental strategies and Memory-as-Action under the shared byte budget.

Each class-incremental strategy (Finetune, Replay, iCaRL, DER, MEMO) is a
:class:`continual.plugin.Plugin` that sizes what it stores from the accountant's
headroom, and has a scikit-learn face. :mod:`strategies.memact` holds the
learned context curation of Memory-as-Action.
"""

from strategies.backbones import MLP, DigitsConvNet, make_backbone, split_backbone
from strategies.classifiers import (
    DERClassifier,
    FinetuneClassifier,
    ICaRLClassifier,
    MEMOClassifier,
    ReplayClassifier,
)
from strategies.der import DER
from strategies.expandable import ExpandableNet
from strategies.finetune import Finetune
from strategies.icarl import ICaRL
from strategies.memact import MemoryAsAction
from strategies.memo import MEMO
from strategies.replay import Replay
from strategies.resnet import CifarResNet, imagenet_resnet18
from strategies.streaming import StreamingClassifier

__all__ = [
    "DER",
    "MEMO",
    "MLP",
    "CifarResNet",
    "DERClassifier",
    "DigitsConvNet",
    "ExpandableNet",
    "Finetune",
    "FinetuneClassifier",
    "ICaRL",
    "ICaRLClassifier",
    "MEMOClassifier",
    "MemoryAsAction",
    "Replay",
    "ReplayClassifier",
    "StreamingClassifier",
    "imagenet_resnet18",
    "make_backbone",
    "split_backbone",
]
