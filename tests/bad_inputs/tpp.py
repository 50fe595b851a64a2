"""Bad-input cases: tpp (the TPP estimators, the EasyTPP loader, event containers, Hawkes,
calendar windows and drift streams).

Subjects are small: four sequences of five events, two types, one epoch of a 4-wide model.
Fitted subjects are built once and deep-copied per case.
"""

from __future__ import annotations

import atexit
import copy
import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from streams import EventSequences, calendar_windows, load_easytpp
from streams.drift import detect_drifts, segment_by_drift
from streams.hawkes import HawkesProcess, hawkes_drift_stream, oracle_log_likelihood, random_hawkes
from tests.bad_inputs import Case
from tpp import NeuralTPP, PoissonTPP, PromptTPP

NAN, INF = float("nan"), float("inf")
SMALL = {"epochs": 1, "batch_size": 4, "n_points": 2, "n_draws": 2, "random_state": 0}
TINY_NHP = {"hidden_size": 4, **SMALL}
TINY_PROMPT = {
    "d_model": 4,
    "d_time": 4,
    "n_layers": 1,
    "n_prompts": 3,
    "prompt_length": 2,
    "top_n": 2,
    **SMALL,
}


def rows(n: int = 4, length: int = 5) -> list[dict[str, Any]]:
    """``n`` sequences of ``length`` events, one time unit apart, types 0, 1, 0, ..."""
    return [
        {
            "dim_process": 2,
            "time_since_start": [float(i + j) for j in range(length)],
            "time_since_last_event": [0.0] + [1.0] * (length - 1),
            "type_event": [j % 2 for j in range(length)],
        }
        for i in range(n)
    ]


def edited(**fields: Any) -> list[dict[str, Any]]:
    """:func:`rows` with the fields of the first sequence replaced."""
    data = rows()
    data[0].update(fields)
    return data


def sequences() -> EventSequences:
    return EventSequences.from_lists([[0.0, 1.0, 2.0], [1.0, 2.0]], [[0, 1, 0], [1, 1]], 2)


@functools.cache
def _fitted(kind: str) -> Any:
    if kind == "nhp":
        return NeuralTPP(**TINY_NHP).fit(rows())
    if kind == "prompt":
        return PromptTPP(**TINY_PROMPT).fit(rows())
    return PoissonTPP().fit(rows())


def fitted(kind: str) -> Any:
    """A fresh copy of a fitted ``"nhp"``, ``"prompt"`` or ``"poisson"`` estimator."""
    return copy.deepcopy(_fitted(kind))


@functools.cache
def _python_score() -> float:
    return (
        NeuralTPP(hidden_size=4, lr=0.01, epochs=2, batch_size=2, n_points=2, random_state=0)
        .fit(rows())
        .score(rows())
    )


# ---------------------------------------------------------------- files
_DIR = Path(tempfile.mkdtemp(prefix="bad_tpp_"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)


def written(name: str, content: bytes | str) -> Path:
    """A file named ``name`` holding ``content``, in a temporary directory."""
    path = _DIR / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def json_text(data: Any) -> str:
    return json.dumps(data, indent=1)


def loads(name: str, content: bytes | str, **options: Any) -> Any:
    return lambda _: load_easytpp(written(name, content), **options)


def fits(make: Any, data: Any = None) -> dict[str, Any]:
    """``subject`` and ``act`` of a case that fits a fresh ``make()`` on ``data``."""
    return {"subject": make, "act": lambda est: est.fit(rows() if data is None else data)}


def nhp(**params: Any) -> Any:
    return lambda: NeuralTPP(**{**TINY_NHP, **params})


def prompt(**params: Any) -> Any:
    return lambda: PromptTPP(**{**TINY_PROMPT, **params})


# ---------------------------------------------------------------- valid checks
def _same_score(est: Any) -> None:
    assert est.score(rows()) == _python_score(), (est.score(rows()), _python_score())


def _rates_at_scale_two(est: Any) -> None:
    # 4 sequences x 4 scored events (2 of each type) over 4 x 4 time units, halved by the scale
    assert np.allclose(est.rates_, [8 / 8, 8 / 8]), est.rates_


def _two_windows(stream: Any) -> None:
    assert len(stream) == 2 and stream[1].metadata["window"] == (10.0, 20.0), stream


def _three_train_one_test(stream: Any) -> None:
    sizes = len(stream[0].train), len(stream[0].test), stream[0].metadata["dev"]
    assert sizes == (3, 1, None), sizes


def _three_types(process: Any) -> None:
    assert process.n_types == 3, process


CASES: list[Case] = [
    # ------------------------------------------------ NeuralTPP hyperparameters
    Case("NeuralTPP(lr=nan)", **fits(nhp(lr=NAN)), mentions=("lr", "nan")),
    Case("NeuralTPP(lr=-0.1)", **fits(nhp(lr=-0.1)), mentions=("lr", "-0.1")),
    Case("NeuralTPP(lr=inf)", **fits(nhp(lr=INF)), mentions=("lr", "inf")),
    Case("NeuralTPP(epochs=0)", **fits(nhp(epochs=0)), mentions=("epochs", "0")),
    Case("NeuralTPP(epochs=1.5)", **fits(nhp(epochs=1.5)), mentions=("epochs", "1.5")),
    Case("NeuralTPP(batch_size=0)", **fits(nhp(batch_size=0)), mentions=("batch_size", "0")),
    Case("NeuralTPP(batch_size='4')", **fits(nhp(batch_size="4")), mentions=("batch_size", "'4'")),
    Case("NeuralTPP(hidden_size=0)", **fits(nhp(hidden_size=0)), mentions=("hidden_size", "0")),
    Case(
        "NeuralTPP(hidden_size=2.5)", **fits(nhp(hidden_size=2.5)), mentions=("hidden_size", "2.5")
    ),
    Case("NeuralTPP(n_points=0)", **fits(nhp(n_points=0)), mentions=("n_points", "0")),
    Case("NeuralTPP(n_draws=-1)", **fits(nhp(n_draws=-1)), mentions=("n_draws", "-1")),
    Case("NeuralTPP(time_scale=nan)", **fits(nhp(time_scale=NAN)), mentions=("time_scale", "nan")),
    Case("NeuralTPP(time_scale=0)", **fits(nhp(time_scale=0)), mentions=("time_scale", "0")),
    Case("NeuralTPP(max_length=1)", **fits(nhp(max_length=1)), mentions=("max_length", "1")),
    Case(
        "NeuralTPP(strategy='ewc', ewc_lambda=-1)",
        **fits(nhp(strategy="ewc", ewc_lambda=-1.0)),
        mentions=("ewc_lambda", "-1"),
    ),
    Case("NeuralTPP(model='rnn')", **fits(nhp(model="rnn")), mentions=("model", "rnn")),
    Case(
        "NeuralTPP(strategy='magic')", **fits(nhp(strategy="magic")), mentions=("strategy", "magic")
    ),
    Case("NeuralTPP(precision='64')", **fits(nhp(precision="64")), mentions=("precision", "64")),
    Case("NeuralTPP(truncate='yes')", **fits(nhp(truncate="yes")), mentions=("truncate", "yes")),
    Case(
        "NeuralTPP(model='attnhp', time_size=3)",
        **fits(nhp(model="attnhp", time_size=3)),
        mentions=("time_size", "3"),
    ),
    Case(
        "NeuralTPP(model='attnhp', n_heads=0)",
        **fits(nhp(model="attnhp", n_heads=0)),
        mentions=("n_heads", "0"),
    ),
    Case(
        "NeuralTPP(model='attnhp', n_heads=3)",
        **fits(nhp(model="attnhp", time_size=4, n_heads=3)),
        mentions=("n_heads", "3"),
    ),
    Case(
        "NeuralTPP(model='attnhp', n_layers=0)",
        **fits(nhp(model="attnhp", time_size=4, n_layers=0)),
        mentions=("n_layers", "0"),
    ),
    Case(
        "NeuralTPP(lr=np.float32, epochs=np.int64, batch_size=np.int64)",
        **fits(
            lambda: NeuralTPP(
                hidden_size=np.int64(4),
                lr=np.float32(0.01),
                epochs=np.int64(2),
                batch_size=np.int64(2),
                n_points=np.int64(2),
                random_state=np.int64(0),
            )
        ),
        valid=_same_score,
    ),
    # ------------------------------------------------ PromptTPP / PoissonTPP hyperparameters
    Case("PromptTPP(n_prompts=0)", **fits(prompt(n_prompts=0)), mentions=("n_prompts", "0")),
    Case("PromptTPP(top_n=5, n_prompts=3)", **fits(prompt(top_n=5)), mentions=("top_n", "5")),
    Case(
        "PromptTPP(prompt_length=0)",
        **fits(prompt(prompt_length=0)),
        mentions=("prompt_length", "0"),
    ),
    Case(
        "PromptTPP(match_weight=nan)",
        **fits(prompt(match_weight=NAN)),
        mentions=("match_weight", "nan"),
    ),
    Case("PromptTPP(alternate='no')", **fits(prompt(alternate="no")), mentions=("alternate", "no")),
    Case(
        "PromptTPP(train_backbone='never')",
        **fits(prompt(train_backbone="never")),
        mentions=("train_backbone", "never"),
    ),
    Case("PromptTPP(d_model=-1)", **fits(prompt(d_model=-1)), mentions=("d_model", "-1")),
    Case("PromptTPP(d_time=5)", **fits(prompt(d_time=5)), mentions=("d_time", "5")),
    Case(
        "PoissonTPP(time_scale=0)",
        **fits(lambda: PoissonTPP(time_scale=0)),
        mentions=("time_scale", "0"),
    ),
    Case(
        "PoissonTPP(time_scale=-inf)",
        **fits(lambda: PoissonTPP(time_scale=-INF)),
        mentions=("time_scale", "-inf"),
    ),
    Case(
        "PoissonTPP(time_scale=np.float32(2))",
        **fits(lambda: PoissonTPP(time_scale=np.float32(2.0))),
        valid=_rates_at_scale_two,
    ),
    # ------------------------------------------------ event input to fit
    Case(
        "NeuralTPP.fit: type_event 0.7",
        **fits(nhp(), edited(type_event=[0, 0.7, 0, 1, 0])),
        mentions=("type_event", "0.7"),
    ),
    Case(
        "NeuralTPP.fit: EventSequences with type 0.7",
        act=lambda est: est.fit(EventSequences([0.0, 1.0], [0, 0.7], [0, 2], 2)),
        subject=nhp(),
        mentions=("types", "0.7"),
    ),
    Case(
        "NeuralTPP.fit: type_event -1",
        **fits(nhp(), edited(type_event=[0, -1, 0, 1, 0])),
        mentions=("type_event", "-1"),
    ),
    Case(
        "NeuralTPP.fit: type_event 2 with dim_process 2",
        **fits(nhp(), edited(type_event=[0, 2, 0, 1, 0])),
        mentions=("type_event", "2"),
    ),
    Case(
        "NeuralTPP.fit: type_event 'a'",
        **fits(nhp(), edited(type_event=[0, "a", 0, 1, 0])),
        mentions=("type_event", "a"),
    ),
    Case(
        "NeuralTPP.fit: decreasing times",
        **fits(nhp(), edited(time_since_start=[0.0, 2.0, 1.0, 3.0, 4.0])),
        mentions=("time_since_start", "sorted"),
    ),
    Case(
        "NeuralTPP.fit: NaN time",
        **fits(nhp(), edited(time_since_start=[0.0, NAN, 2.0, 3.0, 4.0])),
        mentions=("time_since_start", "nan"),
    ),
    Case(
        "NeuralTPP.fit: inf time",
        **fits(nhp(), edited(time_since_start=[0.0, 1.0, 2.0, 3.0, INF])),
        mentions=("time_since_start", "inf"),
    ),
    Case(
        "NeuralTPP.fit: negative time",
        **fits(nhp(), edited(time_since_start=[-1.0, 1.0, 2.0, 3.0, 4.0])),
        mentions=("time_since_start", "-1"),
    ),
    Case(
        "NeuralTPP.fit: NaN gap",
        **fits(nhp(), edited(time_since_last_event=[0.0, NAN, 1.0, 1.0, 1.0])),
        mentions=("time_since_last_event", "nan"),
    ),
    Case(
        "NeuralTPP.fit: unequal time and type lengths",
        **fits(nhp(), edited(type_event=[0, 1])),
        mentions=("type_event", "lengths"),
    ),
    Case(
        "NeuralTPP.fit: empty sequence",
        **fits(nhp(), edited(time_since_start=[], time_since_last_event=[], type_event=[])),
        mentions=("sequences[0]", "empty"),
    ),
    Case("NeuralTPP.fit: no sequence", **fits(nhp(), []), mentions=("sequences", "empty")),
    Case(
        "NeuralTPP.fit: dim_process 0",
        **fits(nhp(), [{**r, "dim_process": 0} for r in rows()]),
        mentions=("dim_process", "0"),
    ),
    Case(
        "NeuralTPP.fit: dim_process 2.5",
        **fits(nhp(), [{**r, "dim_process": 2.5} for r in rows()]),
        mentions=("dim_process", "2.5"),
    ),
    Case(
        "NeuralTPP.fit: a record without type_event",
        **fits(nhp(), [{k: v for k, v in r.items() if k != "type_event"} for r in rows()]),
        mentions=("sequences[0]", "type_event"),
    ),
    Case(
        "NeuralTPP.fit: y given",
        act=lambda est: est.fit(rows(), [1, 2]),
        subject=nhp(),
        mentions=("y", "[1, 2]"),
    ),
    Case("NeuralTPP.fit: a dict", **fits(nhp(), rows()[0]), mentions=("sequences", "dict")),
    Case(
        "PoissonTPP.fit: NaN time",
        **fits(PoissonTPP, edited(time_since_start=[0.0, NAN, 2.0, 3.0, 4.0])),
        mentions=("time_since_start", "nan"),
    ),
    Case(
        "NeuralTPP.fit: EventSequences without a sequence",
        **fits(nhp(), EventSequences([], [], [0], 2)),
        mentions=("sequences", "none"),
    ),
    Case(
        "NeuralTPP.fit: dim_process True",
        **fits(nhp(), [{**r, "dim_process": True} for r in rows()]),
        mentions=("dim_process", "True"),
    ),
    Case(
        "NeuralTPP.fit: whole-number float types (valid)",
        **fits(nhp(), [{**r, "type_event": [float(k) for k in r["type_event"]]} for r in rows()]),
        valid=lambda est: np.testing.assert_equal(est.score(rows()), _fitted("nhp").score(rows())),
    ),
    # ------------------------------------------------ fitted estimators
    Case(
        "NeuralTPP.partial_fit: dim_process 3 after 2",
        act=lambda est: est.partial_fit([{**r, "dim_process": 3} for r in rows()]),
        subject=functools.partial(fitted, "nhp"),
        mentions=("dim_process", "3"),
    ),
    Case(
        "NeuralTPP.partial_fit: type_event -1",
        act=lambda est: est.partial_fit(edited(type_event=[0, 1, -1, 1, 0])),
        subject=functools.partial(fitted, "nhp"),
        mentions=("type_event", "-1"),
    ),
    Case(
        "NeuralTPP.score: NaN time",
        act=lambda est: est.score(edited(time_since_start=[0.0, 1.0, NAN, 3.0, 4.0])),
        subject=functools.partial(fitted, "nhp"),
        mentions=("time_since_start", "nan"),
    ),
    Case(
        "PromptTPP.predict: type_event 7",
        act=lambda est: est.predict(edited(type_event=[0, 1, 7, 1, 0])),
        subject=functools.partial(fitted, "prompt"),
        mentions=("type_event", "7"),
    ),
    Case(
        "PoissonTPP.partial_fit: type_event 0.5",
        act=lambda est: est.partial_fit(edited(type_event=[0, 1, 0.5, 1, 0])),
        subject=functools.partial(fitted, "poisson"),
        mentions=("type_event", "0.5"),
    ),
    Case(
        "NeuralTPP.score before fit",
        act=lambda est: est.score(rows()),
        subject=nhp(),
        mentions=("NeuralTPP", "fit"),
    ),
    Case(
        "PromptTPP.predict before fit",
        act=lambda est: est.predict(rows()),
        subject=prompt(),
        mentions=("PromptTPP", "fit"),
    ),
    Case(
        "PoissonTPP.score before fit",
        act=lambda est: est.score(rows()),
        subject=PoissonTPP,
        mentions=("PoissonTPP", "fit"),
    ),
    # ------------------------------------------------ budgets
    Case(
        "NeuralTPP(budget=100): model too large",
        **fits(nhp(budget=100)),
        mentions=("model needs", "100"),
    ),
    Case(
        "PromptTPP(budget='1 KB'): prompts too large",
        **fits(prompt(budget="1 KB")),
        mentions=("prompts needs", "1 KB"),
    ),
    Case(
        "PoissonTPP(budget=8): counts too large",
        **fits(lambda: PoissonTPP(budget=8)),
        mentions=("counts needs", "8"),
    ),
    Case(
        "NeuralTPP(budget='1 MB'): dim_process 10**9",
        **fits(nhp(budget="1 MB"), [{**r, "dim_process": 10**9} for r in rows()]),
        mentions=("model needs", "1 MB"),
    ),
    Case(
        "NeuralTPP.fit: fitted, hidden_size=64 past the budget",
        act=lambda est: est.set_params(hidden_size=64).fit(rows()),
        subject=lambda: copy.deepcopy(_budgeted_nhp()),
        mentions=("model needs", "20000"),
    ),
    # ------------------------------------------------ load_easytpp
    Case(
        "load_easytpp: malformed JSON",
        act=loads("malformed.json", '[\n {"dim_process": 2,,}\n]'),
        mentions=("malformed.json", "line 2"),
    ),
    Case(
        "load_easytpp: truncated JSON",
        act=loads("truncated.json", json_text(rows())[:-40]),
        mentions=("truncated.json", "line"),
    ),
    Case(
        "load_easytpp: binary file",
        act=loads("binary.json", bytes(range(256)) * 4),
        mentions=("binary.json", "binary"),
    ),
    Case(
        "load_easytpp: empty file", act=loads("empty.json", b""), mentions=("empty.json", "empty")
    ),
    Case(
        "load_easytpp: a JSON object, not a list",
        act=loads("object.json", json_text(rows()[0])),
        mentions=("object.json", "list"),
    ),
    Case(
        "load_easytpp: record without type_event",
        act=loads("missing.json", json_text([rows()[0], {"dim_process": 2}])),
        mentions=("missing.json", "record 1", "type_event"),
    ),
    Case(
        "load_easytpp: NaN in time_since_start",
        act=loads("nan.json", json_text(edited(time_since_start=[0.0, NAN, 2.0, 3.0, 4.0]))),
        mentions=("nan.json", "record 0", "time_since_start", "nan"),
    ),
    Case(
        "load_easytpp: null in time_since_last_event",
        act=loads("null.json", json_text(edited(time_since_last_event=[0.0, None, 1, 1, 1]))),
        mentions=("null.json", "record 0", "time_since_last_event", "None"),
    ),
    Case(
        "load_easytpp: string in type_event",
        act=loads("string.json", json_text(edited(type_event=[0, "1", 0, 1, 0]))),
        mentions=("string.json", "record 0", "type_event", "'1'"),
    ),
    Case(
        "load_easytpp: nested list in time_since_start",
        act=loads("nested.json", json_text(edited(time_since_start=[[0.0, 1.0]] * 5))),
        mentions=("nested.json", "record 0", "time_since_start"),
    ),
    Case(
        "load_easytpp: a record that is a number",
        act=loads("number.json", json_text([rows()[0], 3])),
        mentions=("number.json", "record 1"),
    ),
    Case(
        "load_easytpp: an empty JSON list",
        act=loads("nothing.json", "[]"),
        mentions=("nothing.json", "empty"),
    ),
    Case(
        "load_easytpp: a list of paths and a number",
        act=lambda _: load_easytpp([written("good.json", json_text(rows())), 3]),
        mentions=("source", "3"),
    ),
    Case(
        "load_easytpp: dim_process differs between files",
        act=lambda _: load_easytpp(
            [
                written("two.json", json_text(rows())),
                written("three.json", json_text([{**r, "dim_process": 3} for r in rows()])),
            ]
        ),
        mentions=("three.json", "record 0", "dim_process"),
    ),
    Case(
        "load_easytpp: NaN gap (JSON NaN literal)",
        act=loads("nangap.json", json_text(edited(time_since_last_event=[0.0, 1, 1, NAN, 1]))),
        mentions=("nangap.json", "record 0", "time_since_last_event", "nan", "position 3"),
    ),
    Case(
        "load_easytpp: a directory",
        act=lambda _: load_easytpp(_DIR),
        mentions=("source", str(_DIR)),
    ),
    Case(
        "load_easytpp(atol=nan)",
        act=lambda _: load_easytpp(rows(), atol=NAN),
        mentions=("atol", "nan"),
    ),
    Case(
        "load_easytpp(atol=-1)",
        act=lambda _: load_easytpp(rows(), atol=-1.0),
        mentions=("atol", "-1"),
    ),
    # ------------------------------------------------ EventSequences
    Case(
        "EventSequences: types 0.7",
        act=lambda _: EventSequences([0.0, 1.0], [0, 0.7], [0, 2], 2),
        mentions=("types", "0.7"),
    ),
    Case(
        "EventSequences: dim_process 0",
        act=lambda _: EventSequences([0.0], [0], [0, 1], 0),
        mentions=("dim_process", "0"),
    ),
    Case(
        "EventSequences: offsets past the end",
        act=lambda _: EventSequences([0.0, 1.0], [0, 1], [0, 3], 2),
        mentions=("offsets", "3"),
    ),
    Case(
        "EventSequences.from_lists: unequal lengths",
        act=lambda _: EventSequences.from_lists([[0.0, 1.0]], [[0]], 2),
        mentions=("sequence 0", "length"),
    ),
    Case(
        "EventSequences.subset: index 5 of 2",
        act=lambda _: sequences().subset([5]),
        mentions=("indices", "5"),
    ),
    Case(
        "EventSequences.subset: index -1",
        act=lambda _: sequences().subset([-1]),
        mentions=("indices", "-1"),
    ),
    Case(
        "EventSequences.subset: index 0.5",
        act=lambda _: sequences().subset([0.5]),
        mentions=("indices", "0.5"),
    ),
    Case(
        "EventSequences.truncated(0)",
        act=lambda _: sequences().truncated(0),
        mentions=("max_length", "0"),
    ),
    # ------------------------------------------------ calendar_windows
    Case(
        "calendar_windows(width=0)",
        act=lambda _: calendar_windows(_clock(), 2, 0.0),
        mentions=("width", "0"),
    ),
    Case(
        "calendar_windows(width=nan)",
        act=lambda _: calendar_windows(_clock(), 2, NAN),
        mentions=("width", "nan"),
    ),
    Case(
        "calendar_windows(width=inf)",
        act=lambda _: calendar_windows(_clock(), 2, INF),
        mentions=("width", "inf"),
    ),
    Case(
        "calendar_windows(n_windows=0)",
        act=lambda _: calendar_windows(_clock(), 0, 10.0),
        mentions=("n_windows", "0"),
    ),
    Case(
        "calendar_windows(stride=-1)",
        act=lambda _: calendar_windows(_clock(), 2, 10.0, stride=-1.0),
        mentions=("stride", "-1"),
    ),
    Case(
        "calendar_windows(start=nan)",
        act=lambda _: calendar_windows(_clock(), 2, 10.0, start=NAN),
        mentions=("start", "nan"),
    ),
    Case(
        "calendar_windows(min_events=0)",
        act=lambda _: calendar_windows(_clock(), 2, 10.0, min_events=0),
        mentions=("min_events", "0"),
    ),
    Case(
        "calendar_windows(split=(0.5, 0.5, nan))",
        act=lambda _: calendar_windows(_clock(), 2, 10.0, split=(0.5, 0.5, NAN)),
        mentions=("split", "nan"),
    ),
    Case(
        "calendar_windows(n_windows=np.int64(2), width=np.float32(10))",
        act=lambda _: calendar_windows(_clock(), np.int64(2), np.float32(10.0)),
        valid=_two_windows,
    ),
    # ------------------------------------------------ Hawkes
    Case(
        "HawkesProcess(decay=nan)",
        act=lambda _: HawkesProcess(np.ones(2), np.zeros((2, 2)), NAN),
        mentions=("decay", "nan"),
    ),
    Case(
        "HawkesProcess(baseline=[1, -1])",
        act=lambda _: HawkesProcess(np.array([1.0, -1.0]), np.zeros((2, 2)), 1.0),
        mentions=("baseline", "-1"),
    ),
    Case(
        "HawkesProcess.simulate(horizon=nan)",
        act=lambda _: _process().simulate(NAN),
        mentions=("horizon", "nan"),
    ),
    Case(
        "HawkesProcess.log_likelihood: type 5 of 2",
        act=lambda _: _process().log_likelihood([0.0, 1.0], [0, 5]),
        mentions=("types", "5"),
    ),
    Case(
        "HawkesProcess.log_likelihood: decreasing times",
        act=lambda _: _process().log_likelihood([0.0, 2.0, 1.0], [0, 1, 0]),
        mentions=("times", "sorted"),
    ),
    Case(
        "HawkesProcess.log_likelihood(end=nan)",
        act=lambda _: _process().log_likelihood([0.0, 1.0], [0, 1], end=NAN),
        mentions=("end", "nan"),
    ),
    Case(
        "random_hawkes(n_types=0)",
        act=lambda _: random_hawkes(0),
        mentions=("n_types", "0"),
    ),
    Case(
        "random_hawkes(radius_range=(0.5, nan))",
        act=lambda _: random_hawkes(2, radius_range=(0.5, NAN)),
        mentions=("radius_range", "nan"),
    ),
    Case(
        "random_hawkes(n_types=np.int64(3))",
        act=lambda _: random_hawkes(np.int64(3), random_state=0),
        valid=_three_types,
    ),
    Case(
        "hawkes_drift_stream(n_regimes=0)",
        act=lambda _: hawkes_drift_stream(0, 2, horizon=20.0, n_sequences=5),
        mentions=("n_regimes", "0"),
    ),
    Case(
        "hawkes_drift_stream(horizon=-1)",
        act=lambda _: hawkes_drift_stream(1, 2, horizon=-1.0, n_sequences=5),
        mentions=("horizon", "-1"),
    ),
    Case(
        "hawkes_drift_stream(n_sequences=1): no test data",
        act=lambda _: hawkes_drift_stream(1, 2, horizon=20.0, n_sequences=1),
        mentions=("n_sequences", "1", "test"),
    ),
    Case(
        "hawkes_drift_stream(n_sequences=4): no dev sequence (valid)",
        act=lambda _: hawkes_drift_stream(1, 2, horizon=40.0, n_sequences=4),
        valid=_three_train_one_test,
    ),
    Case(
        "oracle_log_likelihood: 3 types, a 2-type process",
        act=lambda _: oracle_log_likelihood(
            _process(), EventSequences.from_lists([[0.0, 1.0]], [[0, 2]], 3)
        ),
        mentions=("dim_process", "3"),
    ),
    # ------------------------------------------------ drift
    Case(
        "detect_drifts: NaN in signal",
        act=lambda _: detect_drifts([0.0, NAN, 1.0]),
        mentions=("signal", "nan"),
    ),
    Case(
        "detect_drifts(min_size=0)",
        act=lambda _: detect_drifts([0.0, 1.0], min_size=0),
        mentions=("min_size", "0"),
    ),
    Case(
        "segment_by_drift: signal shorter than X",
        act=lambda _: segment_by_drift(np.arange(5), signal=[0.0, 1.0]),
        mentions=("signal", "(2,)"),
    ),
]


@functools.cache
def _budgeted_nhp() -> NeuralTPP:
    """A fitted NeuralTPP with a budget of 20,000 bytes (do not change: deep-copy it)."""
    return NeuralTPP(budget=20_000, **TINY_NHP).fit(rows())


def _clock() -> EventSequences:
    """Ten sequences on a shared clock, an event every half unit on [0, 20)."""
    return EventSequences.from_lists([np.arange(0.0, 20.0, 0.5)] * 10, [[0] * 40] * 10, 1)


def _process() -> HawkesProcess:
    return HawkesProcess(np.array([0.5, 0.2]), np.array([[0.3, 0.1], [0.2, 0.4]]), 1.5)
