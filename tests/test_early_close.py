"""zkadapt.operator.early_close: which channels count as closed, and the stop line."""

from __future__ import annotations

from zkadapt.errors import ChannelError
from zkadapt.operator.early_close import HeadClosedEarly, closed_early_line, head_closed


class _Node:
    def __init__(self, status: str) -> None:
        self._status = status

    @property
    def head_status(self) -> str:
        if self._status == "down":
            raise ChannelError("node unreachable")
        return self._status


def test_only_a_head_its_node_reports_closed_counts() -> None:
    assert head_closed(_Node("Closed")) and head_closed(_Node("FanoutPossible"))
    assert head_closed(_Node("Final"))
    assert not head_closed(_Node("Open")) and not head_closed(_Node("Initializing"))
    assert not head_closed(_Node("down"))  # an unreachable node shows nothing closed
    assert not head_closed(object())  # the local ledger has no head


def test_the_stop_line_is_one_line_with_the_escrow_account_and_exit_code_5() -> None:
    line = closed_early_line("bob", 1, 3, "the head was closed after round 1")
    assert line.startswith("bob: the session's hydra head was closed before round 2 of 3")
    assert line.endswith("; escrow: the head was closed after round 1") and "\n" not in line
    assert "escrow" not in closed_early_line("bob", 0, 2)
    assert HeadClosedEarly.exit_code == 5 and issubclass(HeadClosedEarly, ChannelError)
