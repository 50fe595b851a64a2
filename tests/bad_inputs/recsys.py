"""Bad-input cases: recsys (the Recommender, its mappers and plugins, the interaction
containers, streams and loaders).

Every case works on tiny data (a few dozen interactions, ``dim=4``, one epoch); fitted
subjects are deep copies of one cached fit, and loader cases write their files in one
temporary folder.
"""

from __future__ import annotations

import copy
import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsys import (
    CpuTimeBudget,
    DoubleGraphHash,
    DoubleHash,
    DynamicSparsity,
    FrequencyHash,
    Full,
    GraphHash,
    ModuloHash,
    Recommender,
    evaluate,
)
from streams.communities import planted_communities
from streams.interaction_streams import interaction_blocks
from streams.interactions import Interactions
from streams.recsys_loaders import load_interaction_table, load_lightgcn, read_lightgcn
from tests.bad_inputs import Case

NAN, INF = float("nan"), float("inf")
SMALL = {"dim": 4, "epochs": 1, "batch_size": 64, "random_state": 0}


@functools.cache
def _data() -> Interactions:
    return planted_communities(20, 30, n_communities=2, interactions_per_user=4, seed=0)


def _small(**params: Any) -> Recommender:
    return Recommender(**{**SMALL, **params})


@functools.cache
def _fitted_once(**params: Any) -> Recommender:
    return _small(**params).fit(_data())


def _fitted(**params: Any) -> Recommender:
    """A fresh copy of a small fitted Recommender."""
    return copy.deepcopy(_fitted_once(**params))


def _table(rec: Recommender) -> torch.Tensor:
    return rec.model_.table.dense().detach()


# ------------------------------------------------------------------ parameters
def _param(name: str, mentions: tuple[str, ...], **params: Any) -> Case:
    """``Recommender(**params).fit(data)`` must name the parameter and its value."""
    return Case(name, lambda rec: rec.fit(_data()), mentions, subject=lambda: _small(**params))


def _refit(name: str, mentions: tuple[str, ...], **params: Any) -> Case:
    """``set_params(**params)`` on a fitted Recommender, then ``partial_fit``."""
    return Case(
        name, lambda rec: rec.set_params(**params).partial_fit(_data()), mentions, subject=_fitted
    )


def _same_as(expected: dict[str, Any]) -> Any:
    """A check that a fit with numpy scalars equals the fit with the Python numbers."""

    def check(rec: Recommender) -> None:
        reference = _small(**expected).fit(_data())
        torch.testing.assert_close(_table(rec), _table(reference), rtol=1e-5, atol=1e-6)
        assert rec.last_fit_["steps"] == reference.last_fit_["steps"], rec.last_fit_

    return check


PARAMETER_CASES = [
    _param("Recommender(density=1.5)", ("density", "1.5"), density=1.5),
    _param("Recommender(density=0.0)", ("density", "0.0"), density=0.0),
    _param("Recommender(density=nan)", ("density", "nan"), density=NAN),
    _param("Recommender(dim=0)", ("dim", "0"), dim=0),
    _param("Recommender(dim=2.5)", ("dim", "2.5"), dim=2.5),
    _param("Recommender(lr=-0.1)", ("lr", "-0.1"), lr=-0.1),
    _param("Recommender(lr=inf)", ("lr", "inf"), lr=INF),
    _param("Recommender(epochs=0)", ("epochs", "0"), epochs=0),
    _param("Recommender(epochs='3')", ("epochs", "'3'"), epochs="3"),
    _param("Recommender(batch_size=0)", ("batch_size", "0"), batch_size=0),
    _param("Recommender(reg=-1.0)", ("reg", "-1.0"), reg=-1.0),
    _param("Recommender(reg=nan)", ("reg", "nan"), reg=NAN),
    _param("Recommender(time_budget=0)", ("time_budget", "0"), time_budget=0),
    _param("Recommender(time_budget=-1.0)", ("time_budget", "-1.0"), time_budget=-1.0),
    _param(
        "Recommender(density=0.5, update_every=0)",
        ("update_every", "0"),
        density=0.5,
        update_every=0,
    ),
    _param(
        "Recommender(embedding='modulo', n_user_rows=0)",
        ("n_user_rows", "0"),
        embedding="modulo",
        n_user_rows=0,
    ),
    _param(
        "Recommender(embedding='modulo', n_item_rows=-3)",
        ("n_item_rows", "-3"),
        embedding="modulo",
        n_item_rows=-3,
    ),
    _param(
        "Recommender(embedding='graphhash', resolution=0)",
        ("resolution", "0"),
        embedding="graphhash",
        resolution=0,
    ),
    _param(
        "Recommender(embedding='graphhash', resolution=nan)",
        ("resolution", "nan"),
        embedding="graphhash",
        resolution=NAN,
    ),
    _param("Recommender(model='gcn')", ("model", "gcn"), model="gcn"),
    _param("Recommender(embedding='bloom')", ("embedding", "bloom"), embedding="bloom"),
    _param("Recommender(precision='half')", ("precision", "half"), precision="half"),
    _refit("Recommender.partial_fit after set_params(lr=nan)", ("lr", "nan"), lr=NAN),
    _refit(
        "Recommender.partial_fit after set_params(density=1.5)", ("density", "1.5"), density=1.5
    ),
    _refit("Recommender.partial_fit after set_params(epochs=0)", ("epochs", "0"), epochs=0),
    Case(
        "Recommender(numpy scalars dim, lr, epochs, batch_size, reg)",
        lambda rec: rec.fit(_data()),
        subject=lambda: Recommender(
            dim=np.int64(4),
            lr=np.float32(0.01),
            epochs=np.int64(2),
            batch_size=np.int32(64),
            reg=np.float64(1e-4),
            random_state=np.int64(0),
        ),
        valid=_same_as({"dim": 4, "lr": 0.01, "epochs": 2, "batch_size": 64, "reg": 1e-4}),
    ),
    Case(
        "Recommender(numpy scalars density, update_every)",
        lambda rec: rec.fit(_data()),
        subject=lambda: _small(density=np.float64(0.5), update_every=np.int64(2)),
        valid=_same_as({"density": 0.5, "update_every": 2}),
    ),
    Case(
        "Recommender(numpy scalars n_user_rows, n_item_rows, resolution)",
        lambda rec: rec.fit(_data()),
        subject=lambda: _small(
            embedding="doublegraphhash",
            n_user_rows=np.int64(3),
            n_item_rows=np.int32(5),
            resolution=np.float32(1.0),
        ),
        valid=_same_as(
            {"embedding": "doublegraphhash", "n_user_rows": 3, "n_item_rows": 5, "resolution": 1.0}
        ),
    ),
    Case(
        "Recommender(time_budget=np.float32(60.0))",
        lambda rec: rec.fit(_data()),
        subject=lambda: _small(time_budget=np.float32(60.0)),
        valid=_same_as({"time_budget": 60.0}),
    ),
    Case(
        "Recommender(budget=np.int64(1_000_000))",
        lambda rec: rec.fit(_data()),
        subject=lambda: _small(budget=np.int64(1_000_000)),
        valid=_same_as({"budget": 1_000_000}),
    ),
]


# -------------------------------------------------------------- fitting input
HUGE_ITEM = 2**31 - 2


def _huge_item(rec: Recommender) -> Any:
    return rec.partial_fit(Interactions([0, 1], [3, HUGE_ITEM]))


FIT_CASES = [
    Case(
        "Recommender.fit(no interactions)",
        lambda rec: rec.fit(Interactions([], [])),
        ("X", "at least one"),
        subject=_small,
    ),
    Case(
        "Recommender.fit(a numpy array)",
        lambda rec: rec.fit(np.zeros((3, 2))),
        ("X", "ndarray"),
        subject=_small,
    ),
    Case(
        "Recommender.fit(data, y=[1])",
        lambda rec: rec.fit(_data(), [1]),
        ("y", "list"),
        subject=_small,
    ),
    Case(
        "Recommender.partial_fit(item 2**31-2 under 1 MB, MF full)",
        _huge_item,
        ("needs", "budget"),
        subject=lambda: _fitted(budget="1MB"),
    ),
    Case(
        "Recommender.partial_fit(item 2**31-2 under 1 MB, MF modulo)",
        _huge_item,
        ("needs", "budget"),
        subject=lambda: _fitted(budget="1MB", embedding="modulo"),
    ),
    Case(
        "Recommender.partial_fit(user 2**31-2 under 1 MB, MF frequency)",
        lambda rec: rec.partial_fit(Interactions([HUGE_ITEM, 1], [3, 4])),
        ("needs", "budget"),
        subject=lambda: _fitted(budget="1MB", embedding="frequency"),
    ),
]


# ------------------------------------------------------------------- inference
def _recommend(name: str, mentions: tuple[str, ...], users: Any = (0, 1), **kwargs: Any) -> Case:
    return Case(name, lambda rec: rec.recommend(users, **kwargs), mentions, subject=_fitted)


def _top(users: Any, k: int) -> Any:
    def check(result: np.ndarray) -> None:
        expected = _fitted_once().recommend(list(users), k=k)
        np.testing.assert_array_equal(result, expected)
        assert result.shape == (len(users), k)

    return check


INFERENCE_CASES = [
    _recommend("Recommender.recommend([-1])", ("users", "-1"), users=[-1]),
    _recommend("Recommender.recommend([1.7])", ("users", "1.7"), users=[1.7]),
    _recommend("Recommender.recommend([nan])", ("users", "nan"), users=[NAN]),
    _recommend("Recommender.recommend(['a'])", ("users",), users=["a"]),
    _recommend("Recommender.recommend([2**40])", ("users", str(2**40)), users=[2**40]),
    _recommend("Recommender.recommend([[0, 1]])", ("users", "1-D"), users=[[0, 1]]),
    _recommend("Recommender.recommend(k=-1)", ("k", "-1"), k=-1),
    _recommend("Recommender.recommend(k=0)", ("k", "0"), k=0),
    _recommend("Recommender.recommend(k=2.5)", ("k", "2.5"), k=2.5),
    _recommend("Recommender.recommend(exclude=array)", ("exclude", "ndarray"), exclude=np.eye(2)),
    Case(
        "Recommender.recommend(int32 users, k=np.int64(3))",
        lambda rec: rec.recommend(np.array([0, 1], dtype=np.int32), k=np.int64(3)),
        subject=_fitted,
        valid=_top([0, 1], 3),
    ),
    Case(
        "Recommender.recommend(whole-number float users)",
        lambda rec: rec.recommend(np.array([2.0, 0.0]), k=2),
        subject=_fitted,
        valid=_top([2, 0], 2),
    ),
    Case(
        "Recommender.scores(k=0)",
        lambda rec: rec.scores(_data(), k=0),
        ("k", "0"),
        subject=_fitted,
    ),
    Case(
        "Recommender.score(a numpy array)",
        lambda rec: rec.score(np.zeros((2, 2))),
        ("X", "ndarray"),
        subject=_fitted,
    ),
    Case(
        "Recommender.score(train='abc')",
        lambda rec: rec.score(_data(), train="abc"),
        ("train", "str"),
        subject=_fitted,
    ),
    Case(
        "Recommender.recluster(resolution=-1.0)",
        lambda rec: rec.recluster(_data(), resolution=-1.0),
        ("resolution", "-1.0"),
        subject=lambda: _fitted(embedding="graphhash"),
    ),
]


# ------------------------------------------------------- mappers and plugins
def _call(name: str, mentions: tuple[str, ...], function: Any, *args: Any, **kwargs: Any) -> Case:
    return Case(name, lambda _: function(*args, **kwargs), mentions)


COMPONENT_CASES = [
    _call("ModuloHash(0)", ("n_rows", "0"), ModuloHash, 0),
    _call("ModuloHash(2.5)", ("n_rows", "2.5"), ModuloHash, 2.5),
    _call("DoubleHash(-1)", ("n_rows", "-1"), DoubleHash, -1),
    _call("Full(0)", ("n_ids", "0"), Full, 0),
    _call("Full(3, n_fallback=0)", ("n_fallback", "0"), Full, 3, n_fallback=0),
    _call("FrequencyHash(4, frequent=[-1])", ("frequent", "-1"), FrequencyHash, 4, [-1]),
    _call("FrequencyHash(4, frequent=[1.5])", ("frequent", "1.5"), FrequencyHash, 4, [1.5]),
    _call("GraphHash([0, -5])", ("labels", "-5"), GraphHash, [0, -5]),
    _call("GraphHash([0.5])", ("labels", "0.5"), GraphHash, [0.5]),
    _call("GraphHash([0], n_fallback=0)", ("n_fallback", "0"), GraphHash, [0], n_fallback=0),
    Case(
        "DoubleGraphHash(n_hash_rows=0)",
        lambda _: DoubleGraphHash(GraphHash([0, 1]), n_hash_rows=0),
        ("n_hash_rows", "0"),
    ),
    Case("ModuloHash.rows([-1])", lambda _: ModuloHash(4).rows([-1]), ("ids", "-1")),
    Case("ModuloHash.rows([1.5])", lambda _: ModuloHash(4).rows([1.5]), ("ids", "1.5")),
    Case("GraphHash.rows([nan])", lambda _: GraphHash([0, 1]).rows([NAN]), ("ids", "nan")),
    _call("DynamicSparsity(total_steps=0)", ("total_steps", "0"), DynamicSparsity, 0),
    _call(
        "DynamicSparsity(update_every=0)",
        ("update_every", "0"),
        DynamicSparsity,
        10,
        update_every=0,
    ),
    _call(
        "DynamicSparsity(ratio_start=1.5)",
        ("ratio_start", "1.5"),
        DynamicSparsity,
        10,
        ratio_start=1.5,
    ),
    _call(
        "DynamicSparsity(accumulate=5, update_every=2)",
        ("accumulate", "5"),
        DynamicSparsity,
        10,
        update_every=2,
        accumulate=5,
    ),
    _call("CpuTimeBudget(-1.0)", ("seconds", "-1.0"), CpuTimeBudget, -1.0),
    _call("CpuTimeBudget(nan)", ("seconds", "nan"), CpuTimeBudget, NAN),
    _call("CpuTimeBudget('fast')", ("seconds", "fast"), CpuTimeBudget, "fast"),
    Case(
        "evaluate(k=0)",
        lambda _: evaluate(np.ones((2, 2)), np.ones((3, 2)), _two_by_three(), _two_by_three(), k=0),
        ("k", "0"),
    ),
    Case(
        "evaluate(user_emb with nan)",
        lambda _: evaluate(
            np.array([[NAN, 0.0], [1.0, 0.0]]), np.ones((3, 2)), _two_by_three(), _two_by_three()
        ),
        ("user_emb", "nan"),
    ),
    Case(
        "evaluate(test=list)",
        lambda _: evaluate(np.ones((2, 2)), np.ones((3, 2)), _two_by_three(), [[0, 1]]),
        ("test", "list"),
    ),
]


def _two_by_three() -> Interactions:
    return Interactions([0, 1], [2, 0], n_users=2, n_items=3)


# ------------------------------------------------ interactions, streams, synthetic
def _blocks_of(n_blocks: Any) -> Any:
    def check(stream: Any) -> None:
        assert len(stream) == int(n_blocks)
        assert sum(len(e.train) for e in stream) == len(_data())

    return check


def _planted(result: Interactions) -> None:
    expected = planted_communities(10, 12, n_communities=2, interactions_per_user=3, seed=0)
    np.testing.assert_array_equal(result.users, expected.users)
    np.testing.assert_array_equal(result.items, expected.items)


DATA_CASES = [
    _call("Interactions(users=[0, -1])", ("users", "-1"), Interactions, [0, -1], [0, 1]),
    _call("Interactions(users=[0, 1.5])", ("users", "1.5"), Interactions, [0, 1.5], [0, 1]),
    _call("Interactions(users=[0, nan])", ("users", "nan"), Interactions, [0, NAN], [0, 1]),
    _call("Interactions(items=[2**40])", ("items", str(2**40)), Interactions, [0], [2**40]),
    _call("Interactions(users=['a'])", ("users",), Interactions, ["a"], [0]),
    _call("Interactions(users=[[0, 1]])", ("users", "1-D"), Interactions, [[0, 1]], [[0, 1]]),
    _call("Interactions(2 users, 1 item)", ("users", "items"), Interactions, [0, 1], [0]),
    _call("Interactions(times=[nan])", ("times", "nan"), Interactions, [0], [0], times=[NAN]),
    _call("Interactions(times=['x'])", ("times",), Interactions, [0], [0], times=["x"]),
    _call("Interactions(ratings=[inf])", ("ratings", "inf"), Interactions, [0], [0], ratings=[INF]),
    _call("Interactions(n_items too small)", ("n_items", "2"), Interactions, [0], [4], n_items=2),
    _call("Interactions(n_users=-1)", ("n_users", "-1"), Interactions, [0], [0], n_users=-1),
    Case(
        "interaction_blocks(n_blocks=0)",
        lambda _: interaction_blocks(_data(), 0),
        ("n_blocks", "0"),
    ),
    Case(
        "interaction_blocks(n_blocks=2.5)",
        lambda _: interaction_blocks(_data(), 2.5),
        ("n_blocks", "2.5"),
    ),
    Case(
        "interaction_blocks(n_blocks > len(data))",
        lambda _: interaction_blocks(Interactions([0, 1], [0, 1]), 3),
        ("n_blocks", "3"),
    ),
    Case(
        "interaction_blocks(order='sorted')",
        lambda _: interaction_blocks(_data(), 2, order="sorted"),
        ("order", "sorted"),
    ),
    Case(
        "interaction_blocks(data=list)",
        lambda _: interaction_blocks([(0, 1)], 1),
        ("data", "list"),
    ),
    Case(
        "interaction_blocks(n_blocks=np.int64(2))",
        lambda _: interaction_blocks(_data(), np.int64(2)),
        valid=_blocks_of(2),
    ),
    _call("planted_communities(n_users=0)", ("n_users", "0"), planted_communities, 0, 10),
    _call("planted_communities(p_in=1.5)", ("p_in", "1.5"), planted_communities, 10, 12, p_in=1.5),
    _call(
        "planted_communities(popularity=nan)",
        ("popularity", "nan"),
        planted_communities,
        10,
        12,
        popularity=NAN,
    ),
    _call(
        "planted_communities(n_communities > n_items)",
        ("n_communities", "13"),
        planted_communities,
        10,
        12,
        n_communities=13,
    ),
    _call(
        "planted_communities(interactions_per_user=2.5)",
        ("interactions_per_user", "2.5"),
        planted_communities,
        10,
        12,
        interactions_per_user=2.5,
    ),
    Case(
        "planted_communities(numpy sizes)",
        lambda _: planted_communities(
            np.int64(10),
            np.int64(12),
            n_communities=np.int64(2),
            interactions_per_user=np.int32(3),
            p_in=np.float32(0.9),
            seed=0,
        ),
        valid=_planted,
    ),
]


# ---------------------------------------------------------------------- loaders
@functools.cache
def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="recsys_bad_inputs_"))


def _file(name: str, content: str | bytes) -> Path:
    """Write ``content`` to a fresh file ``name`` in the cases' temporary folder."""
    path = _folder() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _lightgcn(folder: str, train: str | bytes, test: str | bytes = "0 1\n") -> Path:
    _file(f"{folder}/train.txt", train)
    _file(f"{folder}/test.txt", test)
    return _folder() / folder


_TABLES = iter(range(1000))


def _table_case(
    name: str, content: str | bytes, mentions: tuple[str, ...], *, bad: str = "", **kwargs: Any
) -> Case:
    """``load_interaction_table`` on a file holding ``content``: the message names the file
    (a neutral name, so that it cannot stand for the other mentions) and ``mentions``; a bad
    parameter (``bad``, one of ``kwargs``) is named without the file."""
    file = f"table{next(_TABLES)}.tsv"
    return Case(
        f"load_interaction_table: {name}",
        lambda _: load_interaction_table(_file(file, content), **kwargs),
        mentions if bad else (file, *mentions),
    )


BINARY = bytes(range(256)) * 4


def _udata(result: Interactions) -> None:
    assert result.users.tolist() == [5, 7] and result.items.tolist() == [1, 2]
    assert result.ratings.tolist() == [4.0, 3.0] and result.times.tolist() == [10, 11]


LOADER_CASES = [
    Case(
        "load_lightgcn: malformed JSON",
        lambda _: load_lightgcn(_lightgcn("g1", '{"user": 0, "items": [1, 2]\n')),
        ("g1/train.txt", "line 1"),
    ),
    Case(
        "load_lightgcn: binary file",
        lambda _: load_lightgcn(_lightgcn("g2", BINARY)),
        ("g2/train.txt", "line 1", "binary"),
    ),
    Case(
        "load_lightgcn: empty train.txt",
        lambda _: load_lightgcn(_lightgcn("g3", "")),
        ("g3/train.txt", "empty"),
    ),
    Case(
        "load_lightgcn: binary test.txt",
        lambda _: load_lightgcn(_lightgcn("g4", "0 1\n", b"0 1\n\xff\xfe\x00\x01")),
        ("g4/test.txt", "line 2", "binary"),
    ),
    Case(
        "read_lightgcn: negative item ID",
        lambda _: read_lightgcn(_file("negative.txt", "0 1\n2 -3\n")),
        ("negative.txt", "line 2", "-3"),
    ),
    Case(
        "read_lightgcn: ID 99999999999999999999",
        lambda _: read_lightgcn(_file("overflow.txt", "0 99999999999999999999\n")),
        ("overflow.txt", "line 1", "99999999999999999999"),
    ),
    Case(
        "read_lightgcn: user ID 2**31",
        lambda _: read_lightgcn(_file("int32.txt", f"0 1\n{2**31} 2\n")),
        ("int32.txt", "line 2", "user", str(2**31)),
    ),
    Case(
        "read_lightgcn: n_items too small",
        lambda _: read_lightgcn(_file("declared.txt", "0 1 5\n"), n_items=3),
        ("declared.txt", "n_items", "3"),
    ),
    Case(
        "read_lightgcn: an item 'x'",
        lambda _: read_lightgcn(_file("letter.txt", "0 1\n1 x 3\n")),
        ("letter.txt", "line 2", "'x'"),
    ),
    _table_case("user ID 1e20", "1\t2\n1e20\t3\n", ("user", "line 2", "1e20")),
    _table_case("NaN user ID", "1\t2\nnan\t3\n", ("user", "line 2", "nan")),
    _table_case("NaN rating", "1\t2\tnan\n", ("rating", "line 1", "nan"), rating_col=2),
    _table_case("inf timestamp", "1\t2\t5\n1\t3\tinf\n", ("time", "line 2", "inf"), time_col=2),
    _table_case("empty file", "", ("empty",)),
    _table_case("header only", "user_id\titem_id\n", ("no interaction",), skip_header=True),
    _table_case("missing rating column", "1\t2\n", ("line 1", "at least 3"), rating_col=2),
    _table_case("truncated last line", "1\t2\t5\n1\t", ("line 2", "truncated"), rating_col=2),
    _table_case("binary file", BINARY, ("line 1", "binary")),
    _table_case("negative item ID", "1\t2\n1\t-5\n", ("item", "line 2", "-5")),
    _table_case("fractional user ID", "1.5\t2\n", ("user", "line 1", "1.5")),
    _table_case("item 'b'", "1\t2\n1\tb\n", ("item", "line 2", "'b'")),
    _table_case("user_col=-1", "1\t2\n", ("user_col", "-1"), bad="user_col", user_col=-1),
    _table_case("user_col=0.5", "1\t2\n", ("user_col", "0.5"), bad="user_col", user_col=0.5),
    _table_case("sep=''", "1\t2\n", ("sep", "''"), bad="sep", sep=""),
    _table_case(
        "item_col == user_col", "1\t2\n", ("item_col", "user_col"), bad="item_col", item_col=0
    ),
    Case(
        "load_interaction_table: numpy column positions",
        lambda _: load_interaction_table(
            _file("numpy_columns.tsv", "1\t5\t4\t10\n2\t7\t3\t11\n"),
            user_col=np.int64(1),
            item_col=np.int32(0),
            rating_col=np.int64(2),
            time_col=np.int64(3),
        ),
        valid=_udata,
    ),
]

CASES: list[Case] = [
    *PARAMETER_CASES,
    *FIT_CASES,
    *INFERENCE_CASES,
    *COMPONENT_CASES,
    *DATA_CASES,
    *LOADER_CASES,
]
