"""The ``_*_side.py`` scripts run inside the peers' environments and import the peer
libraries, which ours does not have: the doctest collection leaves them out."""

collect_ignore_glob = ["_*_side.py"]
