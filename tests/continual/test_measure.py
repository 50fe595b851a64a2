"""nbytes against ground truth computed from how each buffer was allocated."""

from __future__ import annotations

import collections
import functools
import gc
import math
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from river import forest, naive_bayes, neighbors, tree
from river.datasets import synth
from river.tree.nodes.leaf import HTLeaf
from river.utils import VectorDict

from continual import MemoryAccountant, nbytes
from continual.measure import Live, PythonGraph, Reservation, python_objects

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


# ---------------------------------------------------------------- Python graphs (PythonGraph)
# The independent count walks what the garbage collector sees an object hold
# (gc.get_referents), not the containers, __dict__ and __slots__ that nbytes walks, and
# charges sys.getsizeof once per object, leaving out the objects the model shares with the
# interpreter. Interned strings are approximated by identifier-like strings: CPython interns
# attribute names and identifier-like literals, the only strings a river tree holds.

_SHARED_TYPES = (
    type(None),
    bool,
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
)


def _shared(obj):
    if type(obj) is int:
        return -5 <= obj <= 256
    if type(obj) is str:
        return len(obj) <= 1 or obj.isidentifier()
    if type(obj) is tuple:
        return not obj
    return isinstance(obj, _SHARED_TYPES)


def gc_size(root):
    seen, total, stack = {}, 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or _shared(obj):
            continue
        seen[id(obj)] = obj
        getattr(obj, "__dict__", None)  # CPython 3.11+ materialises lazy instance dicts
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def _learned(model, dataset, n=2000):
    for x, y in dataset.take(n):
        model.learn_one(x, y)
    return model


@pytest.mark.parametrize(
    "make",
    [
        lambda: _learned(tree.HoeffdingTreeClassifier(), synth.SEA(seed=1)),
        lambda: _learned(tree.HoeffdingTreeClassifier(grace_period=50, delta=1e-3), synth.SEA(1)),
        lambda: _learned(forest.ARFClassifier(n_models=3, seed=1), synth.SEA(seed=1), 1000),
        lambda: _learned(neighbors.KNNClassifier(engine=neighbors.LazySearch()), synth.SEA(1)),
        lambda: _learned(naive_bayes.GaussianNB(), synth.SEA(seed=1)),
    ],
    ids=["hoeffding-tree", "grown-tree", "arf", "knn-window", "gaussian-nb"],
)
def test_python_graph_of_river_models_matches_a_gc_walk(make):
    model = make()
    measured = nbytes(PythonGraph(model))
    assert measured == gc_size(model)
    assert nbytes(PythonGraph(model)) == measured  # stable once dicts are materialised


def test_python_graph_of_a_grown_tree_is_tens_of_kilobytes():
    model = _learned(tree.HoeffdingTreeClassifier(grace_period=50, delta=1e-3), synth.SEA(1))
    assert model.n_leaves > 1
    assert 50_000 < nbytes(PythonGraph(model)) < 500_000
    with pytest.raises(TypeError, match=r"cannot measure .* wrap it in continual\.PythonGraph"):
        nbytes(model)  # without the opt-in a river model is not payload


def test_python_graph_counts_python_scalars_and_containers():
    big, value, text = 10**30, 2.5, "".join(["not ", "interned"])
    graph = [big, value, text, (value,), {value: big}]
    expected = (
        sys.getsizeof(graph)
        + sys.getsizeof(big)
        + sys.getsizeof(value)
        + sys.getsizeof(text)
        + sys.getsizeof((value,))
        + sys.getsizeof({value: big})
    )
    assert nbytes(PythonGraph(graph)) == expected
    assert nbytes(graph) == len(text)  # the payload measure: the string only


def test_python_graph_leaves_shared_objects_out():
    fresh = "".join(["continual", " probe ", "string"])
    interned = sys.intern("".join(["continual_interned_", "probe"]))
    shared = [None, True, 7, "a", "", (), b"", interned, int, math, math.sqrt, len, np.float64]
    assert nbytes(PythonGraph(shared)) == sys.getsizeof(shared)
    assert nbytes(PythonGraph([fresh])) == sys.getsizeof([fresh]) + sys.getsizeof(fresh)
    assert nbytes(PythonGraph([257])) == sys.getsizeof([257]) + sys.getsizeof(257)


def test_python_graph_walks_attributes_slots_and_collections():
    class Slotted:
        __slots__ = ("_Slotted__hidden", "empty", "left")

        def __init__(self):
            self.left = [1.5]
            self.__hidden = 2.5

    class Plain:
        def __init__(self, value):
            self.value = value

    slotted, plain = Slotted(), Plain(3.5)
    factory = collections.defaultdict(list, {"k": [4.5]})
    window = collections.deque([5.5, 6.5], maxlen=3)
    counter = collections.Counter({"word with spaces": 1000})
    # A Counter is a dict with an instance dict too; the walk asks for it, so it exists.
    graph = {"s": slotted, "p": plain, "d": factory, "w": window, "c": counter, "set": {7.5}}
    held = [slotted, slotted.left, 1.5, 2.5, plain, vars(plain), 3.5, factory, factory["k"]]
    held += [4.5, window, 5.5, 6.5, counter, vars(counter), "word with spaces", 1000]
    held += [graph["set"], 7.5]
    expected = sys.getsizeof(graph) + sum(sys.getsizeof(o) for o in held)
    assert nbytes(PythonGraph(graph)) == expected


def test_python_graph_counts_tensors_and_arrays_once_with_their_headers():
    weights = torch.zeros(10)
    array = np.zeros(25, dtype=np.float32)
    graph = {"w": weights, "view": weights[2:], "a": array, "a_view": array[5:]}
    headers = sum(sys.getsizeof(t) for t in (weights, graph["view"]))
    headers += sys.getsizeof(array) - array.nbytes + sys.getsizeof(graph["a_view"])
    assert nbytes(PythonGraph(graph)) == sys.getsizeof(graph) + headers + 40 + 100
    boxed = np.array([10**30, 10**31], dtype=object)
    assert nbytes(PythonGraph(boxed)) == sys.getsizeof(boxed) + 2 * sys.getsizeof(10**30)


def test_python_graph_honours_declared_payloads():
    store = Reservation(1000)
    live = Live(lambda: {"value": 2.5})
    assert nbytes(PythonGraph([store])) == sys.getsizeof([store]) + 1000
    assert nbytes(PythonGraph(live)) == sys.getsizeof({"value": 2.5}) + sys.getsizeof(2.5)


def test_python_graph_sees_inside_partial_and_vector_dict():
    weights = {"x": 0.5, "y": 1.5}
    vector = VectorDict(weights)
    assert nbytes(PythonGraph(vector)) == sys.getsizeof(vector) + nbytes(PythonGraph(weights))
    bound = functools.partial(max, 10**30, key=abs)
    expected = sys.getsizeof(bound) + sys.getsizeof(bound.args) + sys.getsizeof(10**30)
    expected += nbytes(PythonGraph(bound.keywords)) + sys.getsizeof(vars(bound))
    assert nbytes(PythonGraph(bound)) == expected


def test_python_graph_terminates_on_cycles():
    ring: list = [2.5]
    ring.append(ring)
    assert nbytes(PythonGraph(ring)) == sys.getsizeof(ring) + sys.getsizeof(2.5)


def test_accountant_charges_objects_shared_by_two_graphs_once():
    shared = [float(i) for i in range(100)]
    accountant = MemoryAccountant()
    accountant.track("first", PythonGraph({"data": shared}))
    accountant.track("second", PythonGraph({"data": shared}))
    ledger = accountant.ledger()
    assert ledger.accounts["second"] == sys.getsizeof({"data": shared})
    assert ledger.total == nbytes(
        PythonGraph([{"data": shared}, {"data": shared}])
    ) - sys.getsizeof([0, 0])


def test_python_objects_finds_the_parts_of_a_model():
    model = _learned(tree.HoeffdingTreeClassifier(grace_period=50, delta=1e-3), synth.SEA(1))
    leaves = [o for o in python_objects(model) if isinstance(o, HTLeaf)]
    assert len(leaves) == model.n_leaves
    assert len({id(o) for o in python_objects(model)}) == len(list(python_objects(model)))
