import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from continual import BudgetExceededError, MemoryAccountant, nbytes


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(20, 30), torch.nn.BatchNorm1d(30), torch.nn.ReLU(), torch.nn.Linear(30, 4)
    )


def _param_bytes(module):
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def test_total_is_measured_live_not_cached():
    store = [torch.zeros(10)]
    accountant = MemoryAccountant()
    accountant.track("store", store)
    assert accountant.total() == 40
    store.append(torch.zeros(5, dtype=torch.float64))
    assert accountant.total() == 80


def test_tracking_a_submodule_adds_zero_bytes():
    model = _model()
    accountant = MemoryAccountant()
    accountant.track("model", model)
    before = accountant.total()
    accountant.track("first layer", model[0])
    accountant.track("bn", model[1])
    assert accountant.total() == before == _param_bytes(model)
    assert accountant.ledger().accounts["first layer"] == 0


def test_shared_storage_goes_to_first_registered_account():
    shared = torch.zeros(100)
    own = torch.zeros(10)
    accountant = MemoryAccountant()
    accountant.track("a", [shared[:10]])
    accountant.track("b", [shared, own])
    assert accountant.ledger().accounts == {"a": 400, "b": 40}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(1, 50), st.booleans()), min_size=1, max_size=8
    )
)
def test_ledger_sums_to_total_and_matches_nbytes(specs):
    pool = [torch.zeros(n + 3) for n in range(5)]
    accountant = MemoryAccountant()
    objects = []
    for index, (which, size, fresh) in enumerate(specs):
        obj = torch.zeros(size) if fresh else pool[which][: (size % 3) + 1]
        objects.append(obj)
        accountant.track(f"acct{index}", obj)
    ledger = accountant.ledger()
    assert sum(ledger.accounts.values()) == ledger.total == accountant.total()
    assert ledger.total == nbytes(objects)


def test_headroom_fits_and_check():
    model = _model()
    size = _param_bytes(model)
    accountant = MemoryAccountant(size + 100)
    accountant.track("model", model)
    assert accountant.headroom() == 100
    assert accountant.fits(100) and not accountant.fits(101)
    assert accountant.check().total == size
    accountant.track("extra", np.zeros(26, dtype=np.float32))  # 104 bytes
    with pytest.raises(BudgetExceededError) as error:
        accountant.check()
    assert error.value.over == 4
    assert error.value.ledger.accounts["extra"] == 104
    assert "exceeded by 4 bytes" in str(error.value)
    assert "extra" in str(error.value)


def test_without_budget_measures_only():
    accountant = MemoryAccountant()
    accountant.track("x", torch.zeros(10**4))
    assert accountant.headroom() == float("inf")
    assert accountant.fits(10**12)
    assert accountant.check().budget is None


def test_extra_bytes_ignores_already_charged_storage():
    weights = torch.zeros(50)
    accountant = MemoryAccountant()
    accountant.track("w", weights)
    assert accountant.extra_bytes(weights[10:]) == 0
    assert accountant.extra_bytes([weights, torch.zeros(3)]) == 12


def test_ledger_table_and_json():
    accountant = MemoryAccountant("1 KB")
    accountant.track("model", torch.zeros(100))
    accountant.track("exemplars", torch.zeros(50, dtype=torch.uint8))
    ledger = accountant.ledger()
    text = str(ledger)
    lines = text.splitlines()
    assert lines[0].split() == ["account", "device", "bytes", "share"]
    assert lines[1].split() == ["model", "cpu", "400", "40.0%"]
    assert lines[2].split() == ["exemplars", "cpu", "50", "5.0%"]
    assert lines[3].split() == ["total", "450", "45.0%"]
    assert len({len(line.rstrip()) for line in lines[1:4]}) == 1  # aligned columns
    data = json.loads(json.dumps(ledger.to_dict()))
    assert data == {
        "accounts": {"model": 400, "exemplars": 50},
        "devices": {"model": {"cpu": 400}, "exemplars": {"cpu": 50}},
        "total": 450,
        "budget": 1000,
        "headroom": 550,
        "transient": 0,
        "peak": 450,
    }


def test_snapshots_record_history():
    store = []
    accountant = MemoryAccountant("1 MB")
    accountant.track("store", store)
    for step in range(3):
        store.append(torch.zeros(10))
        accountant.snapshot(step)
    assert [s.step for s in accountant.history] == [0, 1, 2]
    assert [s.ledger.total for s in accountant.history] == [40, 80, 120]


def test_history_is_bounded_but_peak_and_count_cover_every_snapshot():
    store = []
    accountant = MemoryAccountant(history_size=2)
    accountant.track("store", store)
    for step in range(5):
        store.append(torch.zeros(10 if step != 1 else 1000))
        accountant.snapshot(step)
        store[-1] = torch.zeros(10)
    assert [s.step for s in accountant.history] == [3, 4]
    assert accountant.n_snapshots == 5
    assert accountant.peak == 4 * 10 + 4 * 1000  # step 1: one 1,000-float tensor, one of 10
    accountant.truncate(4)
    assert [s.step for s in accountant.history] == [3] and accountant.n_snapshots == 4


def test_transient_bytes_show_in_the_peak_not_the_total():
    accountant = MemoryAccountant(1000)
    accountant.track("model", torch.zeros(100))
    accountant.transient = 400
    ledger = accountant.ledger()
    assert (ledger.total, ledger.peak, ledger.headroom) == (400, 800, 600)
    assert [line.split()[:2] for line in str(ledger).splitlines()[3:5]] == [
        ["transient", "400"],
        ["peak", "800"],
    ]
    accountant.transient = 0
    assert accountant.ledger().peak == 800  # the peak is a running maximum


def test_check_plan_raises_before_anything_is_allocated():
    accountant = MemoryAccountant(1000)
    accountant.track("model", torch.zeros(100))
    assert accountant.check_plan({"model": 600}).total == 600
    with pytest.raises(BudgetExceededError, match="grow: memory budget exceeded by 1"):
        accountant.check_plan({"model": 600, "store": 401}, "grow")
    with pytest.raises(ValueError, match=r"planned\['store'\]"):
        accountant.check_plan({"store": -1})


def test_state_dict_round_trip_keeps_history_and_peak():
    accountant = MemoryAccountant(1000)
    accountant.track("x", torch.zeros(10))
    accountant.snapshot(0)
    copy = MemoryAccountant(1000)
    copy.load_state_dict(json.loads(json.dumps(accountant.state_dict())))
    assert copy.timeline() == accountant.timeline() and copy.peak == accountant.peak == 40


def test_untrack():
    accountant = MemoryAccountant()
    accountant.track("x", torch.zeros(3))
    accountant.untrack("x")
    assert accountant.total() == 0
    with pytest.raises(ValueError, match="'x' is not tracked"):
        accountant.untrack("x")


def test_tracking_unmeasurable_object_names_it():
    accountant = MemoryAccountant()
    with pytest.raises(TypeError, match=r"cannot track 'thing'.*object"):
        accountant.track("thing", object())
    assert accountant.accounts == []


@pytest.mark.parametrize("name", ["", None, 3])
def test_bad_account_names(name):
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        MemoryAccountant().track(name, torch.zeros(1))


def test_duplicate_account_name():
    accountant = MemoryAccountant()
    accountant.track("x", torch.zeros(1))
    with pytest.raises(ValueError, match="already tracked"):
        accountant.track("x", torch.zeros(1))


class _OnDevice:
    """An object that reports its bytes on a named device (a stand-in for a GPU tensor)."""

    def __init__(self, size, device):
        self.size, self.device = size, device

    def __nbytes__(self):
        return self.size


def test_budget_per_device_checks_each_device_and_names_the_one_over():
    accountant = MemoryAccountant({"cuda": "1 KB", "cpu": 500})
    assert accountant.budget == {"cuda:0": 1000, "cpu": 500}
    accountant.track("model", _OnDevice(900, "cuda:0"))
    accountant.track("exemplars", torch.zeros(100))  # 400 bytes on the CPU
    ledger = accountant.check()
    assert ledger.device_totals() == {"cuda:0": 900, "cpu": 400}
    assert accountant.headroom("cuda:0") == 100
    assert accountant.headroom("cpu") == 100
    assert accountant.headroom("mps") == math.inf  # not budgeted
    # 1,300 bytes in all would fit a 1,500-byte total budget, but the CPU is over its own
    accountant.track("more", torch.zeros(50))
    with pytest.raises(BudgetExceededError, match="budget on cpu is exceeded by 100 bytes") as e:
        accountant.check()
    assert e.value.devices == {"cpu": 100}
    assert "cuda:0" not in str(e.value).splitlines()[0]


def test_room_for_uses_the_device_the_store_lives_on():
    accountant = MemoryAccountant({"cuda:0": 1000, "cpu": 500})
    accountant.track("model", _OnDevice(900, "cuda:0"))
    store = torch.zeros(25)  # 100 bytes on the CPU
    accountant.track("store", store)
    assert accountant.room_for(store) == 500  # the CPU's whole budget
    assert accountant.room_for(_OnDevice(0, "cuda:0")) == 100
    assert accountant.room_for([], device="cuda:0") == 100


def test_check_plan_puts_planned_bytes_on_the_given_device():
    accountant = MemoryAccountant({"cuda:0": 1000, "cpu": 500})
    accountant.check_plan({"model": 900}, device="cuda:0")
    with pytest.raises(BudgetExceededError, match="on cpu"):
        accountant.check_plan({"model": 900})  # on the CPU by default
    accountant.check_plan({"model": {"cuda:0": 800, "cpu": 200}})
    with pytest.raises(ValueError, match=r"planned\['model'\]"):
        accountant.check_plan({"model": {"cpu": -1}})


@pytest.mark.parametrize(
    ("budget", "match"),
    [
        ({}, "at least one device"),
        ({"gpu": "1 KB"}, "budget keys must be devices"),
        ({"cuda": 10, "cuda:0": 20}, "twice"),
        ({"cpu": "lots"}, r"budget\['cpu'\]"),
    ],
)
def test_bad_budget_per_device_is_refused(budget, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MemoryAccountant(budget)


def test_per_device_ledger_survives_state_dict():
    accountant = MemoryAccountant({"cuda:0": 1000})
    accountant.track("model", _OnDevice(900, "cuda:0"))
    accountant.snapshot(0)
    restored = MemoryAccountant({"cuda:0": 1000})
    restored.load_state_dict(json.loads(json.dumps(accountant.state_dict())))
    assert restored.history[0].ledger.device_totals() == {"cuda:0": 900}
