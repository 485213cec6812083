"""Where a party is within a round: reported to progress displays and logs."""

from __future__ import annotations

from enum import Enum


class Phase(str, Enum):
    """Phases of one round (DESIGN.md section 3), in order."""

    KEYS = "keys"
    TRAIN = "train"
    SUBMIT = "submit"
    COLLECT = "collect"
    AGGREGATE = "aggregate"
    DECRYPT = "decrypt"
    APPLY = "apply"
    DONE = "done"
    #: Not a round phase: the escrow's steps around the rounds (lock, votes, settlement).
    ESCROW = "escrow"
