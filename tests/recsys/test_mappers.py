import numpy as np
import pytest
import torch

from continual import MemoryAccountant, nbytes
from recsys.graphhash import GraphHash
from recsys.mapper_specs import mapper_from_dict
from recsys.mappers import DoubleHash, FrequencyHash, Full, ModuloHash, remap_table


def test_full_identity_and_fallback():
    mapper = Full(10, n_fallback=3)
    ids = np.array([0, 9, 10, 11, 12, 13])
    assert mapper.rows(ids).ravel().tolist() == [0, 9, 11, 12, 10, 11]
    assert nbytes(mapper) == 0


def test_modulo_and_double_stay_in_range_and_cost_their_parameters():
    ids = np.arange(10_000)
    assert ModuloHash(7).rows(ids).max() == 6 and nbytes(ModuloHash(7)) == 8
    rows = DoubleHash(97, seed=0).rows(ids)
    assert rows.shape == (10_000, 2) and rows.min() >= 0 and rows.max() < 97
    assert nbytes(DoubleHash(97)) == 5 * 8
    # two independent hashes: the pairs spread like random draws over 97**2 cells (~6,100
    # distinct expected), far beyond the 97 rows of one hash
    pairs = {tuple(r) for r in rows.tolist()}
    assert len(pairs) > 5_000


def test_frequency_hash_private_rows_and_bytes():
    counts = np.array([0, 50, 3, 40, 1, 30, 2, 0])
    mapper = FrequencyHash.from_counts(6, counts)
    assert mapper.frequent.tolist() == [1, 3, 5]
    rows = mapper.rows(np.arange(8)).ravel()
    assert rows[[1, 3, 5]].tolist() == [0, 1, 2]
    assert set(rows[[0, 2, 4, 6, 7]].tolist()) <= {3, 4, 5}
    assert nbytes(mapper) == 3 * 4 + 8


def test_accountant_charges_maps_and_tables():
    mapper = FrequencyHash.from_counts(100, np.arange(1000))
    table = torch.zeros(100, 16)
    accountant = MemoryAccountant()
    accountant.track("table", table)
    accountant.track("map", mapper)
    assert accountant.ledger().accounts == {"table": 100 * 16 * 4, "map": 50 * 4 + 8}


def test_bad_ids_are_named():
    with pytest.raises(ValueError, match="ids must hold non-negative IDs; got -1 at position 0"):
        ModuloHash(3).rows([-1])
    with pytest.raises(ValueError, match=r"ids must hold whole-number IDs; got 0\.5 at position 1"):
        ModuloHash(3).rows([2, 0.5])
    with pytest.raises(TypeError, match="ids must hold integer IDs"):
        ModuloHash(3).rows(["a"])
    assert ModuloHash(3).rows([4.0]).ravel().tolist() == [1]
    with pytest.raises(ValueError, match=r"'n_rows' parameter of ModuloHash.*Got 0 instead"):
        ModuloHash(0)
    with pytest.raises(ValueError, match=r"frequent must hold IDs in .*got -1 at position 0"):
        FrequencyHash(4, [-1])
    with pytest.raises(ValueError, match=r"labels must hold cluster labels .*got -5 at position 1"):
        GraphHash([0, -5, -1])


def test_remap_table_averages_members():
    table = torch.arange(8, dtype=torch.float32).reshape(4, 2)
    new = remap_table(Full(4), ModuloHash(3), table, np.arange(4), torch.full((3, 2), -1.0))
    expected = torch.stack([(table[0] + table[3]) / 2, table[1], table[2]])
    torch.testing.assert_close(new, expected)


@pytest.mark.parametrize(
    "mapper",
    [Full(7, n_fallback=2), ModuloHash(5), DoubleHash(11, seed=4),
     FrequencyHash.from_counts(6, np.array([0, 50, 3, 40, 1, 30, 2, 0]))],
    ids=["full", "modulo", "double", "frequency"],
)  # fmt: skip
def test_a_mapper_is_plain_data(mapper):
    spec = mapper.to_dict()
    assert all(isinstance(v, (int, str, np.ndarray)) for v in spec.values())  # facts
    copy = mapper_from_dict(spec)
    ids = np.arange(100)
    np.testing.assert_array_equal(copy.rows(ids), mapper.rows(ids))
    assert copy.n_rows == mapper.n_rows and nbytes(copy) == nbytes(mapper)
    assert mapper.grown_nbytes(10**9) == nbytes(mapper)  # hashing maps never grow
    for array in mapper.memory_items().values():
        assert not array.flags.writeable


def test_frequency_from_ids_needs_no_array_over_the_vocabulary():
    ids, counts = np.array([3, 2**31 - 2, 8]), np.array([5, 9, 5])
    mapper = FrequencyHash.from_ids(6, ids, counts)
    assert mapper.frequent.tolist() == [3, 8, 2**31 - 2]
    assert mapper.rows([2**31 - 2, 3, 8]).ravel().tolist() == [2, 0, 1]


def test_unrebuildable_seed_is_named():
    with pytest.raises(ValueError, match="seed=None"):
        DoubleHash(5, seed=None).to_dict()
    with pytest.raises(ValueError, match="kind"):
        mapper_from_dict({"kind": "bloom"})
