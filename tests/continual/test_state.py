"""States as nested values: flatten/unflatten round trips, read-only tensors, generator states."""

import json

import numpy as np
import pytest
import torch

from continual.state import (
    flatten,
    is_read_only,
    load_rng_state,
    pack,
    read_only,
    rng_state,
    unflatten,
)


def _state():
    return {
        "weights": torch.nn.Parameter(torch.randn(3, 2)),
        "labels": np.arange(5, dtype=np.uint16),
        "names": np.array(["a", "bc"], dtype=object),
        "graph": torch.eye(4).to_sparse_csr(),
        "pairs": torch.tensor([[0, 1], [1, 0]]).to_sparse(),
        "shape": (2, 3),
        "nested": [{"step": 4, "rate": 0.5, "on": True, "none": None, "$odd": "key"}],
        "by_id": {0: torch.zeros(2), 7: "seven"},
        "scalar": np.float32(1.5),
    }


def test_flatten_keeps_leaves_by_reference_and_a_json_skeleton():
    state = _state()
    leaves, skeleton = flatten(state)
    assert leaves["weights"] is state["weights"]  # no copy, the parameter itself
    assert leaves["graph"] is state["graph"]
    json.dumps(skeleton)  # raises if the skeleton is not JSON
    assert skeleton["shape"] == {"$tuple": [2, 3]}
    assert skeleton["scalar"] == 1.5


def test_round_trip_through_a_file_layout_gives_the_same_values_and_types():
    state = _state()
    leaves, skeleton = flatten(state)
    back = unflatten(pack(leaves), json.loads(json.dumps(skeleton)))
    assert torch.equal(back["weights"], state["weights"].detach())
    assert back["labels"].dtype == np.uint16 and back["labels"].tolist() == [0, 1, 2, 3, 4]
    assert back["names"].tolist() == ["a", "bc"]
    assert back["graph"].layout == torch.sparse_csr
    assert torch.equal(back["graph"].to_dense(), torch.eye(4))
    assert torch.equal(back["pairs"].to_dense(), state["pairs"].to_dense())
    assert back["shape"] == (2, 3)
    assert back["nested"] == [{"step": 4, "rate": 0.5, "on": True, "none": None, "$odd": "key"}]
    assert set(back["by_id"]) == {0, 7} and back["by_id"][7] == "seven"


def test_packed_tensors_share_no_memory():
    base = torch.arange(10.0)
    packed = pack({"a": base, "b": base[2:5]})
    assert packed["a"].untyped_storage().data_ptr() != packed["b"].untyped_storage().data_ptr()
    assert packed["b"].tolist() == [2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (object(), "holds a object"),
        ({"f": lambda: 0}, "holds a function"),
        ({"a": np.array([object()])}, "arrays of objects"),
        ({(1, 2): 3}, "dict keys must be str or numbers"),
    ],
)
def test_unsupported_values_are_named(value, match):
    with pytest.raises(TypeError, match=match):
        flatten(value)


def test_read_only_tensors_lose_the_mark_when_modified_in_place():
    tensor = read_only(torch.zeros(3))
    assert is_read_only(tensor)
    replaced = tensor + 1  # a new tensor: the original is still read-only
    assert is_read_only(tensor) and not is_read_only(replaced)
    tensor.mul_(2)
    assert not is_read_only(tensor)
    array = read_only(np.zeros(3))
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 1.0


@pytest.mark.parametrize(
    "rng", [torch.Generator().manual_seed(5), np.random.default_rng(5)], ids=["torch", "numpy"]
)
def test_generator_states_round_trip_through_json(rng):
    state = rng_state(rng)
    if isinstance(rng, np.random.Generator):
        state = json.loads(json.dumps(state))
        first = rng.random(3).tolist()
    else:
        first = torch.rand(3, generator=rng).tolist()
    load_rng_state(rng, state)
    again = rng.random(3).tolist() if isinstance(rng, np.random.Generator) else None
    if again is None:
        again = torch.rand(3, generator=rng).tolist()
    assert again == first
