import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from continual.bitmask import BitMask

bool_arrays = hnp.arrays(
    dtype=np.bool_, shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=9)
)


@settings(max_examples=100, deadline=None)
@given(bool_arrays)
def test_round_trip_keeps_values_and_shape(array):
    mask = BitMask.from_bool(array)
    restored = mask.to_bool()
    assert restored.dtype == torch.bool
    assert tuple(restored.shape) == array.shape
    np.testing.assert_array_equal(restored.numpy(), array)
    assert mask.shape == array.shape
    assert len(mask) == array.size
    assert mask.count() == int(array.sum())


@settings(max_examples=100, deadline=None)
@given(bool_arrays)
def test_costs_one_bit_per_entry(array):
    mask = BitMask.from_bool(array)
    expected = math.ceil(array.size / 8)
    assert mask.__nbytes__() == expected
    assert mask.packed.dtype == torch.uint8
    assert sum(t.untyped_storage().nbytes() for t in mask.memory_items().values()) == expected


@settings(max_examples=50, deadline=None)
@given(bool_arrays.filter(lambda a: a.size > 0), st.data())
def test_getitem_reads_flat_c_order_entries(array, data):
    mask = BitMask.from_bool(array)
    flat = array.reshape(-1)
    index = data.draw(st.integers(-flat.size, flat.size - 1))
    assert mask[index] == bool(flat[index])


def test_from_torch_tensor_and_known_packing():
    mask = BitMask.from_bool(
        torch.tensor([True, False, False, False, False, False, False, True, True])
    )
    assert mask.packed.tolist() == [0b10000001, 0b10000000]
    assert mask.count() == 3
    assert mask.__nbytes__() == 2


def test_equality_compares_shape_and_values():
    values = np.array([True, False, True, True, False, False])
    mask = BitMask.from_bool(values)
    assert mask == BitMask.from_bool(values.copy())
    assert mask != BitMask.from_bool(values.reshape(2, 3))
    assert mask != BitMask.from_bool(~values)
    assert mask.__eq__(values) is NotImplemented
    assert mask != "mask"


def test_equality_ignores_padding_bits():
    clean = BitMask(torch.tensor([0b10100000], dtype=torch.uint8), (3,))
    dirty = BitMask(torch.tensor([0b10111111], dtype=torch.uint8), (3,))
    assert clean == dirty
    assert dirty.count() == 2


def test_index_errors():
    mask = BitMask.from_bool(np.zeros(5, dtype=bool))
    with pytest.raises(IndexError, match="index"):
        mask[5]
    with pytest.raises(IndexError, match="index"):
        mask[-6]
    with pytest.raises(TypeError, match="index"):
        mask[1.5]


def test_rejects_non_boolean_input():
    with pytest.raises(TypeError, match=r"mask must have a boolean dtype, got dtype int64"):
        BitMask.from_bool(np.array([0, 1]))


def test_constructor_validates_packed_and_shape():
    with pytest.raises(ValueError, match="packed must hold"):
        BitMask(torch.zeros(1, dtype=torch.uint8), (9,))
    with pytest.raises(TypeError, match=r"packed must be a 1-D torch\.uint8"):
        BitMask(torch.zeros(2, dtype=torch.int32), (9,))
    with pytest.raises(TypeError, match="shape must be a tuple"):
        BitMask(torch.zeros(2, dtype=torch.uint8), [9])


def test_repr_mentions_shape_and_count():
    assert repr(BitMask.from_bool(np.ones((2, 2), dtype=bool))) == (
        "BitMask(shape=(2, 2), count=4, nbytes=1)"
    )
