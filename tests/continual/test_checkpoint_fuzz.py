"""Fuzzing continual.load with damaged checkpoints: every damage is a ValueError naming the
file, or (where the damage misses every byte that matters) the same estimator."""

from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from continual import load, save
from continual.checks import assert_same_state
from strategies import FinetuneClassifier

FUZZ = settings(max_examples=40)  # the rest from the 'ci' profile (conftest.py)


@cache
def _fitted() -> FinetuneClassifier:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    return FinetuneClassifier(hidden_sizes=(4,), epochs=1, random_state=0).fit(X, X[:, 0] > 0)


@cache
def _checkpoint(folder: str) -> bytes:
    return save(_fitted(), f"{folder}/good.safetensors").read_bytes()


def _load_or_error(path):
    try:
        return load(path)
    except ValueError as error:
        assert str(path) in str(error), f"the message does not name the file: {error}"
        return None


@FUZZ
@given(data=st.data())
def test_a_damaged_checkpoint_is_refused_naming_the_file_or_loads_the_same(tmp_path, data):
    original = bytearray(_checkpoint(str(tmp_path.parent)))
    damage = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
    where = data.draw(st.integers(0, len(original) - 1))
    if damage == "flip":
        original[where] ^= data.draw(st.integers(1, 255))
    elif damage == "truncate":
        del original[where:]
    else:
        original[where:where] = data.draw(st.binary(min_size=1, max_size=16))
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(bytes(original))
    loaded = _load_or_error(path)
    if loaded is not None:  # a change the format does not read (JSON whitespace, padding)
        assert_same_state(loaded, _fitted(), "a checkpoint loaded despite the damage")


@FUZZ
@given(content=st.binary(max_size=256))
def test_arbitrary_bytes_are_refused_naming_the_file(tmp_path, content):
    path = tmp_path / "random.safetensors"
    path.write_bytes(content)
    assert _load_or_error(path) is None
