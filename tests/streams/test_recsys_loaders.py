import numpy as np
import pytest

from streams.recsys_loaders import load_interaction_table, load_lightgcn, read_lightgcn


def test_lightgcn_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    lines, pairs = [], []
    for user in range(6):
        items = np.sort(rng.choice(12, size=rng.integers(1, 5), replace=False))
        lines.append(" ".join(map(str, [user, *items])))
        pairs += [(user, int(i)) for i in items]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "test.txt").write_text("0 11\n7 3\n")
    train, test = load_lightgcn(tmp_path)
    assert list(zip(train.users.tolist(), train.items.tolist())) == pairs
    assert (train.n_users, train.n_items) == (8, max(12, int(train.items.max()) + 1))
    assert (test.n_users, test.n_items) == (train.n_users, train.n_items)


def test_lightgcn_reports_the_malformed_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("0 1 2\n1 x 3\n")
    with pytest.raises(ValueError, match=r"train\.txt, line 2: the item field \(1\).*got 'x'"):
        read_lightgcn(path)
    path.write_text("0 1\n\n2 -3\n")
    with pytest.raises(ValueError, match=r"line 3: the item field \(1\) must be an ID in .*'-3'"):
        read_lightgcn(path)


def test_movielens_udata(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    data = load_interaction_table(path, sep="\t", rating_col=2, time_col=3)
    assert data.users.tolist() == [196, 186] and data.items.tolist() == [242, 302]
    assert data.ratings.tolist() == [3.0, 3.0]
    assert data.times.tolist() == [881250949, 891717742]


def test_recbole_inter_with_header_and_other_columns(tmp_path):
    path = tmp_path / "ml.inter"
    path.write_text("timestamp:float\titem_id:token\tuser_id:token\n10\t4\t1\n11\t5\t2\n")
    data = load_interaction_table(
        path, sep="\t", user_col=2, item_col=1, time_col=0, skip_header=True
    )
    assert data.users.tolist() == [1, 2] and data.items.tolist() == [4, 5]
    assert data.times.tolist() == [10, 11] and data.ratings is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 2\n3\n", "line 2: expected at least 2"),
        ("1 2\n1 b\n", "line 2: the item field \\(1\\) must be an integer ID, got 'b'"),
        ("1 2\n1 2.5\n", "line 2: the item field \\(1\\) must be a whole-number ID, got '2.5'"),
    ],
)
def test_table_reports_the_malformed_line(tmp_path, text, match):
    path = tmp_path / "t.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_interaction_table(path)
