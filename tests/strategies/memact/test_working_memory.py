import pytest
import torch

from continual import MemoryAccountant
from strategies.memact import KVCacheCost, Message, ToolCall, WorkingMemory


def _memory(**kwargs):
    return WorkingMemory(
        [Message("user", "Remember k1"), Message("tool", "k1=v2 w3", id="a1b2c3d4")], **kwargs
    )


def test_text_charge_is_utf8_bytes_of_every_message():
    memory = _memory()
    memory.append(Message("assistant", "héllo"))
    assert memory.nbytes == len(b"Remember k1") + len(b"k1=v2 w3") + len("héllo".encode())
    assert memory.n_tokens == 2 + 4 + 1  # Remember k1 | k1 = v2 w3 | héllo


@pytest.mark.parametrize(("dtype", "itemsize"), [(torch.int32, 4), (torch.int64, 8)])
def test_token_charge_is_token_count_times_dtype_size(dtype, itemsize):
    memory = _memory(charge="tokens", token_dtype=dtype)
    assert memory.nbytes == 6 * itemsize


def test_custom_tokenizer_and_kv_cache_cost():
    kv = KVCacheCost(layers=2, kv_heads=1, head_dim=4, dtype_bytes=2)
    assert kv.bytes_per_token == 2 * 2 * 1 * 4 * 2
    memory = _memory(charge="tokens", tokenizer=lambda m: list(m.content), kv_cache=kv)
    chars = len("Remember k1") + len("k1=v2 w3")
    assert memory.n_tokens == chars
    assert memory.nbytes == chars * (4 + 32)


def test_soft_delete_costs_bytes_until_purged_and_accountant_shows_it():
    memory = _memory()
    accountant = MemoryAccountant(100)
    accountant.track("context", memory)
    before = accountant.total()
    assert memory.hide("a1b2c3d4")
    assert memory.ids() == [] and len(memory.visible) == 1
    assert accountant.total() == before  # hidden but stored
    assert memory.purge() == len(b"k1=v2 w3")
    assert accountant.total() == len(b"Remember k1")
    assert not memory.hide("a1b2c3d4")


def test_find_skips_hidden_and_copy_is_independent():
    memory = _memory()
    twin = memory.copy()
    twin.append(Message("assistant", "x"))
    assert len(memory) == 2 and len(twin) == 3
    assert memory.find("a1b2c3d4") == 1 and memory.find("nope") is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"charge": "words"}, ValueError, "charge must be 'text' or 'tokens', got 'words'"),
        ({"token_dtype": torch.float32}, TypeError, "token_dtype must be an integer"),
    ],
)
def test_bad_settings_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        WorkingMemory(**kwargs)


def test_bad_messages_are_rejected():
    with pytest.raises(ValueError, match="role must be one of"):
        Message("robot", "x")
    with pytest.raises(TypeError, match="message must be a Message, got str"):
        WorkingMemory().append("hello")
    with pytest.raises(ValueError, match="layers must be a positive int, got 0"):
        KVCacheCost(0, 1, 1)
    assert ToolCall("c", "read", {"a": 1}).text == "read({'a': 1})"
