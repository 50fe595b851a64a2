"""nbytes against ground truth computed from how each buffer was allocated."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from continual import nbytes

pytestmark = [
    pytest.mark.filterwarnings("ignore:Sparse .* support is in beta state:UserWarning"),
    pytest.mark.filterwarnings(
        "ignore:Sparse invariant checks are implicitly disabled:UserWarning"
    ),
]

DTYPES = [torch.float32, torch.float64, torch.int64, torch.uint8, torch.float16, torch.int32]
ITEMSIZE = {
    torch.float32: 4,
    torch.float64: 8,
    torch.int64: 8,
    torch.uint8: 1,
    torch.float16: 2,
    torch.int32: 4,
}


def _torch_base(draw, index):
    rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    dtype = draw(st.sampled_from(DTYPES))
    tensor = torch.zeros(rows, cols, dtype=dtype)
    truth = rows * cols * ITEMSIZE[dtype]
    views = [
        tensor,
        tensor[draw(st.integers(0, rows - 1)) :],
        tensor.t(),
        tensor[:, :1].expand(rows, 5),
        tensor.view(-1),
        tensor[::2],
    ]
    return truth, views


def _numpy_base(draw, index):
    n = draw(st.integers(1, 50))
    dtype = draw(st.sampled_from([np.float32, np.int16, np.uint8, np.float64]))
    array = np.zeros(n, dtype=dtype)
    truth = n * np.dtype(dtype).itemsize
    start = draw(st.integers(0, n - 1))
    shared = torch.from_numpy(array)
    views = [array, array[start:], array[::-1], shared, shared[start:]]
    return truth, views


def _sparse_base(draw, index):
    nnz = draw(st.integers(1, 6))
    layout = draw(st.sampled_from(["coo", "csr", "csc"]))
    values = torch.ones(nnz)
    if layout == "coo":
        indices = torch.stack([torch.arange(nnz), torch.arange(nnz)])
        tensor = torch.sparse_coo_tensor(indices, values, (nnz, nnz))
        truth = 2 * nnz * 8 + nnz * 4
    else:
        compressed = torch.arange(nnz + 1)
        plain = torch.arange(nnz)
        build = torch.sparse_csr_tensor if layout == "csr" else torch.sparse_csc_tensor
        tensor = build(compressed, plain, values, (nnz, nnz))
        truth = (nnz + 1) * 8 + nnz * 8 + nnz * 4
    return truth, [tensor]


@st.composite
def webs(draw):
    """Random buffers, random views of them, and the bytes each buffer truly holds."""
    makers = [_torch_base, _numpy_base, _sparse_base]
    n_bases = draw(st.integers(1, 5))
    truths, views_by_base = [], []
    for index in range(n_bases):
        truth, views = draw(st.sampled_from(makers))(draw, index)
        truths.append(truth)
        views_by_base.append(views)
    picks = []
    for base, views in enumerate(views_by_base):
        chosen = draw(st.lists(st.sampled_from(views), min_size=0, max_size=4))
        picks.extend((base, view) for view in chosen)
    order = draw(st.permutations(range(len(picks)))) if picks else []
    return truths, [picks[i] for i in order]


@settings(max_examples=150, deadline=None)
@given(webs(), st.sampled_from(["list", "tuple", "dict", "nested"]))
def test_nbytes_matches_allocated_buffers(web, container):
    truths, picks = web
    objects = [view for _, view in picks]
    expected = sum(truths[base] for base in {base for base, _ in picks})
    if container == "tuple":
        objects = tuple(objects)
    elif container == "dict":
        objects = {f"k{i}": obj for i, obj in enumerate(objects)}
    elif container == "nested":
        objects = [{"a": objects[: len(objects) // 2]}, (objects[len(objects) // 2 :],)]
    assert nbytes(objects) == expected


def test_views_slices_and_expand_add_nothing():
    base = torch.randn(8, 8)
    assert nbytes([base, base[1:3], base.t(), base[0].expand(100, 8), base.reshape(64)]) == 256


def test_csr_counts_indices_and_values_not_dense_size():
    crow = torch.tensor([0, 1, 2, 2])
    col = torch.tensor([0, 2])
    csr = torch.sparse_csr_tensor(crow, col, torch.tensor([1.0, 2.0]), (3, 1000))
    assert nbytes(csr) == 4 * 8 + 2 * 8 + 2 * 4
    assert csr.to_dense().nbytes == 12000  # what the dense view would cost


def test_bsr_counts_blocks():
    dense = torch.zeros(4, 4)
    dense[:2, :2] = 1.0
    bsr = dense.to_sparse_bsr((2, 2))
    truth = sum(
        t.untyped_storage().nbytes() for t in (bsr.crow_indices(), bsr.col_indices(), bsr.values())
    )
    assert nbytes(bsr) == truth
    assert bsr.values().shape == (1, 2, 2)


def test_quantized_counts_integers_and_qparams():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scales = torch.rand(4, dtype=torch.float64) + 0.1
        per_channel = torch.quantize_per_channel(
            torch.randn(4, 3), scales, torch.zeros(4, dtype=torch.int64), 0, torch.qint8
        )
        per_tensor = torch.quantize_per_tensor(torch.randn(4, 3), 0.1, 0, torch.quint8)
    assert nbytes(per_channel) == 12 + 4 * 8 + 4 * 8
    assert nbytes(per_tensor) == 12 + 16


def test_numpy_views_count_owning_base_once():
    array = np.zeros((10, 10), dtype=np.float32)
    assert nbytes([array[2:], array.T, array.reshape(100)[::3]]) == 400
    assert nbytes(array[5:]) == 400  # the slice keeps the whole base alive


def test_modules_count_tied_parameters_once():
    embedding = torch.nn.Embedding(50, 8)
    head = torch.nn.Linear(8, 50, bias=False)
    head.weight = embedding.weight
    model = torch.nn.Sequential(embedding, head, torch.nn.BatchNorm1d(50))
    # embedding 50*8 floats + BN weight, bias, running mean, running var (50 floats each)
    # + num_batches_tracked (one int64)
    assert nbytes(model) == 50 * 8 * 4 + 4 * 50 * 4 + 8


def test_optimizer_counts_state_only():
    model = torch.nn.Linear(10, 5)
    optimizer = torch.optim.Adam(model.parameters())
    assert nbytes(optimizer) == 0
    model(torch.randn(3, 10)).sum().backward()
    optimizer.step()
    params = 10 * 5 + 5
    state = [t for s in optimizer.state.values() for t in s.values()]
    steps = sum(t.numel() * t.element_size() for t in state if t.dim() == 0)
    assert nbytes(optimizer) == 2 * params * 4 + steps


def test_bytes_str_and_memoryview():
    assert nbytes(b"abcd") == 4
    assert nbytes(bytearray(7)) == 7
    assert nbytes(memoryview(b"abc")) == 3
    assert nbytes("naïve") == 6
    assert nbytes({"a": 1, "b": 2.5, "c": None}) == 0


def test_protocol_objects_report_themselves():
    class Opaque:
        def __nbytes__(self):
            return 123

    class Composite:
        def __init__(self):
            self.weights = torch.zeros(10)

        def memory_items(self):
            return {"weights": self.weights, "alias": self.weights[:5]}

    composite = Composite()
    assert nbytes(Opaque()) == 123
    assert nbytes(composite) == 40
    assert nbytes([composite, composite.weights]) == 40


def test_cycles_terminate():
    items: list = [torch.zeros(3)]
    items.append(items)
    assert nbytes(items) == 12


@pytest.mark.parametrize("bad", [object(), np.array([object()]), lambda: None])
def test_unmeasurable_objects_raise_type_error(bad):
    with pytest.raises(TypeError, match="cannot measure"):
        nbytes(bad)


def test_bad_nbytes_protocol_raises():
    class Liar:
        def __nbytes__(self):
            return -1

    with pytest.raises(TypeError, match="non-negative int"):
        nbytes(Liar())
