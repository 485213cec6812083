"""One error hierarchy for ZK-ADAPT, with the facts attached.

Every error a user can cause or meet derives from :class:`ZkAdaptError`; the CLI turns
any of them into a single line and an exit code (``exit_code``). ``ValueError`` and
``TypeError`` remain for programming mistakes (misusing a function).
"""

from __future__ import annotations


class ZkAdaptError(Exception):
    """Root of every ZK-ADAPT error; ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class ConfigError(ZkAdaptError):
    """A session file or command-line value is wrong; ``key`` names the offending setting."""

    exit_code = 2

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class UsageError(ZkAdaptError):
    """The command line itself is wrong (missing file, bad combination of options)."""

    exit_code = 2


class StorageError(ZkAdaptError):
    """An object store operation failed; ``uri`` names the object or bucket."""

    def __init__(self, uri: str, message: str) -> None:
        self.uri = uri
        super().__init__(f"{uri}: {message}")


class IntegrityError(StorageError):
    """Stored bytes do not match the digest recorded for them (never used when raised)."""


class ChannelError(ZkAdaptError):
    """The ordered message channel is unreachable, or its history is tampered with."""


class ProtocolError(ZkAdaptError):
    """The round protocol cannot go on: below quorum, digest disagreement, bad history."""

    def __init__(self, message: str, *, round: int | None = None, party: str | None = None) -> None:
        self.round = round
        self.party = party
        where = []
        if round is not None:
            where.append(f"round {round}")
        if party is not None:
            where.append(f"party {party}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)


class HistoryConflict(ProtocolError):
    """The recorded session contradicts itself (an edited ledger): no rerun can fix it, so it
    exits 2 like other bad input, and ``zkadapt run`` stops every party at once."""

    exit_code = 2


class JoinRefused(ProtocolError):
    """A newcomer's request to join is refused by the session's membership rules, with the
    reason every party records (docs/membership.md); retrying the same request cannot help,
    so it exits 2 like other bad input."""

    exit_code = 2


class CryptoError(ZkAdaptError):
    """A cryptographic check failed or a key is unusable."""


class DataError(ZkAdaptError):
    """Training or evaluation data cannot be loaded or is malformed."""

    exit_code = 2


class LearningError(ZkAdaptError):
    """Local training went wrong in a way no data or setting explains (a broken backend)."""


class OutputError(ZkAdaptError):
    """This process cannot write its own files (``--out``, a checkpoint, its log, a local store).

    Exit code 3: restarting does not help, so ``zkadapt run`` stops the other parties at once
    instead of letting them wait out every deadline (issue 17). ``path`` names the file.
    """

    exit_code = 3

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"cannot write {path}: {message}")


class RoundsFailed(ZkAdaptError):
    """The session ran to its last round, but some rounds failed (G(r) = G(r-1) for each).

    Exit code 4, apart from 1 (a party or the protocol could not go on): a failed round is an
    outcome the session survives, and ``zkadapt run`` does not restart a party that ended so.
    """

    exit_code = 4
