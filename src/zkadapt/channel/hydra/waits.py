"""How long each wait on the hydra-node may last, from the node's own parameters (pure).

A real head is slow where layer 1 is involved: ``Init``, ``Close``, ``Fanout`` and a deposit
are layer-1 transactions that must be posted and observed (blocks of ~20 s on a public
network), a closed head can be contested for the node's contestation period (43,200 s by
default) before ``ReadyToFanout``, and a deposit enters the head only once it is active,
before the deadline the node announces in ``CommitRecorded`` (its deposit period, 3,600 s by
default, sets it). No wait here is a fixed number of seconds:

=======================  =================================================================
wait                     until (wall clock; a node's failure output ends it at once)
=======================  =================================================================
``HeadIsOpen``,          ``layer1_timeout_s`` after the input (the layer-1 round trip, a
``HeadIsClosed``,        ``[channel.hydra]`` setting)
``HeadIsFinalized``
``ReadyToFanout``        the ``contestationDeadline`` of ``HeadIsClosed`` (else the node's
                         ``contestationPeriod`` from now) + ``layer1_timeout_s``
deposit                  ``layer1_timeout_s`` until the node reports the deposit
                         (``CommitRecorded``), then its ``deadline`` + ``layer1_timeout_s``
``SnapshotConfirmed``    ``confirm_timeout_s`` (a ``[channel.hydra]`` setting)
=======================  =================================================================

An explicit ``timeout`` given to a head command replaces the derived value. Each wait can
report its progress (:class:`WaitProgress`) about once a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zkadapt.channel.hydra.wire import parse_time

if TYPE_CHECKING:
    from zkadapt.channel.hydra.view import HeadView

#: How often a wait with a progress sink reports, in seconds.
PROGRESS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class WaitProgress:
    """Where a wait stands.

    Attributes:
        what: what is awaited (``HeadIsFinalized``, ``CommitFinalized of deposit ...``).
        stage: what the node reported so far, one line (empty if nothing yet).
        elapsed_s: seconds since the wait began.
        total_s: seconds the wait may last in all, as known now (it can grow, e.g. when a
            deposit's deadline becomes known).
    """

    what: str
    stage: str
    elapsed_s: float
    total_s: float


ProgressSink = Callable[[WaitProgress], None]
#: The wall-clock time (epoch seconds) a wait may last until, given what the view knows.
Until = Callable[["HeadView"], float]


def after(seconds: float, started: float) -> Until:
    """A fixed budget: ``seconds`` after ``started``."""
    return lambda _view: started + seconds


def contestation_over(started: float, margin_s: float) -> Until:
    """Until ``ReadyToFanout`` is due: the contestation deadline plus the layer-1 margin.

    The node announces ``ReadyToFanout`` once it sees a block past the deadline; without a
    readable deadline the node's contestation period from ``started`` bounds it.
    """

    def until(view: HeadView) -> float:
        deadline = parse_time(view.contestation_deadline)
        if deadline is None:
            period = view.env.contestation_period_s if view.env is not None else 0.0
            deadline = started + period
        return max(deadline, started) + margin_s

    return until


def deposit_in_head(tx_id: str, started: float, margin_s: float) -> Until:
    """Until deposit ``tx_id`` is in the head or can no longer enter it.

    First the layer-1 margin for the node to see the deposit (``CommitRecorded``), then the
    deadline that output names plus the margin; an unreadable deadline is taken as twice the
    node's deposit period from ``started``. ``DepositExpired`` ends the wait earlier.
    """

    def until(view: HeadView) -> float:
        recorded = view.deposit_deadlines.get(tx_id)
        if recorded is None:
            return started + margin_s
        deadline = parse_time(recorded)
        if deadline is None:
            period = view.env.deposit_period_s if view.env is not None else 0.0
            deadline = started + 2 * period
        return max(deadline, started) + margin_s

    return until


def deposit_stage(tx_id: str) -> Callable[[HeadView], str]:
    """One line on how far deposit ``tx_id`` has come, for progress reports."""

    def stage(view: HeadView) -> str:
        if tx_id in view.deposits:
            return "in the head"
        if tx_id in view.activated:
            return "active: the next snapshot takes it in"
        recorded = view.deposit_deadlines.get(tx_id)
        if recorded is not None:
            env = view.env
            wait = f" after ~{env.deposit_activation_s:,.0f} s" if env is not None else ""
            return f"seen on layer 1; becomes active{wait}, must enter by {recorded}"
        return "submitted on layer 1; waiting for the node to see it"

    return stage


def closed_stage(view: HeadView) -> str:
    """One line on a closed head's contestation period, for progress reports."""
    deadline = view.contestation_deadline
    return f"contestation period until {deadline}" if deadline else "head is closed"
