"""Tests for continual.progress: bars are quiet unless verbose and on a terminal."""

import io

import pytest

from continual.progress import progress


class TerminalStream(io.StringIO):
    """A text stream that claims to be a terminal."""

    def isatty(self):
        return True


def test_verbose_zero_is_silent_even_on_a_terminal():
    stream = TerminalStream()
    items = list(progress(range(5), verbose=0, desc="training", file=stream))
    assert items == [0, 1, 2, 3, 4]
    assert stream.getvalue() == ""


def test_verbose_one_is_silent_when_not_a_terminal():
    stream = io.StringIO()
    items = list(progress(iter("abc"), verbose=1, desc="training", total=3, file=stream))
    assert items == ["a", "b", "c"]
    assert stream.getvalue() == ""


def test_default_stream_is_silent_under_capture(capsys):
    assert sum(progress(range(4), desc="training")) == 6
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_verbose_one_draws_on_a_terminal():
    stream = TerminalStream()
    items = list(progress(range(3), verbose=1, desc="training", file=stream))
    assert items == [0, 1, 2]
    output = stream.getvalue()
    assert "training" in output
    assert "0/3" in output


def test_options_are_passed_to_tqdm():
    bar = progress(iter(range(7)), verbose=2, desc="epochs", total=7, file=TerminalStream())
    assert (bar.total, bar.desc, bar.leave) == (7, "epochs", False)
    assert not bar.disable
    bar.close()
    quiet = progress([1, 2], verbose=0)
    assert quiet.disable is True
    assert progress([1, 2], leave=True, file=TerminalStream()).leave is True


@pytest.mark.parametrize("bad", [-1, 1.0, "1", None])
def test_bad_verbose(bad):
    with pytest.raises(ValueError, match="verbose must be a non-negative int"):
        progress(range(3), verbose=bad)
