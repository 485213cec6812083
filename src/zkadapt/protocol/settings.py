"""``[privacy]`` and ``[protocol]``: how updates are sealed and how rounds are cut.

``privacy.scheme`` accepts any name registered in
:data:`zkadapt.protocol.scheme_registry.PRIVACY_SCHEMES`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from zkadapt.sections import Section, added_later


class PrivacyConfig(Section):
    """How updates are sealed before upload (DESIGN.md section 4, CRYPTO.md).

    With ``scheme = "paillier"`` each update is clipped to ``clip`` (after FedAvg weighting),
    quantized to ``quant_bits``, packed and encrypted under a threshold Paillier key of
    ``key_bits``; any ``threshold`` parties' decryption shares reveal only the sum.

    Keys come from a dealer (``keygen = "dealer"``: t-of-n Shamir; ``"additive"``: n-of-n),
    which is one of the parties or, when ``kgc_public_key`` is set, an external
    key-generation centre running ``zkadapt keygen``; or from no dealer at all
    (``"distributed"``: the parties generate the key together, docs/crypto.md).
    """

    scheme: str = "none"
    keygen: Literal["dealer", "additive", "distributed"] = "dealer"
    key_bits: int = Field(2048, ge=256, le=8192)
    threshold: int | None = Field(None, ge=1, description="Shares that decrypt; default quorum.")
    dealer: str | None = Field(
        None, description="Who deals keys: a party (default the first name) or the KGC's name."
    )
    kgc_public_key: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="Ed25519 key (hex) of an external key-generation centre that deals instead.",
    )
    quant_bits: int = Field(16, ge=2, le=32)
    clip: float = Field(1.0, gt=0)
    refresh_every: int | None = Field(None, ge=1, description="Deal a fresh key every R rounds.")
    textbook: bool = Field(False, description="Textbook r^N encryption instead of DJN.")
    workers: int | None = Field(None, ge=1, description="Encryption processes; default all cores.")
    min_accepted: int | None = added_later(
        None,
        ge=2,
        description=(
            "Smallest accepted set whose sum is decrypted; default 3 with n >= 3, else 2 "
            "(docs/threats.md section 2)."
        ),
    )

    @field_validator("scheme")
    @classmethod
    def _registered(cls, name: str) -> str:
        from zkadapt.protocol.scheme_registry import PRIVACY_SCHEMES

        return PRIVACY_SCHEMES.check_name(name)


class ProtocolConfig(Section):
    """Round protocol limits: quorum and phase deadlines."""

    quorum: int | None = Field(
        None, ge=1, description="Accepted updates needed; default: a majority."
    )
    submit_timeout_s: float = Field(300.0, gt=0)
    close_votes: int | None = added_later(
        None,
        ge=1,
        description=(
            "Distinct PhaseClosed votes that close the submit phase; default: the decryption "
            "threshold (encrypted) or a majority, at most the quorum (docs/threats.md)."
        ),
    )
    poll_interval_s: float = Field(0.1, gt=0, le=10)


class MembershipConfig(Section):
    """``[membership]``: parties joining a running session and members marked absent
    (docs/membership.md). Absent: the session file's parties are the members of every round
    and the session id is as before."""

    admission: Literal["fixed", "open", "vote"] = Field(
        "fixed",
        description=(
            "fixed: no one joins; open: a valid JoinRequest is admitted at the next round "
            "boundary; vote: once `votes` members posted Admit for it."
        ),
    )
    votes: int = Field(1, ge=1, description="Distinct members' Admit that approve a request.")
    max_parties: int = Field(16, ge=1, le=256, description="Members at most, newcomers included.")
    absent_rounds: int | None = Field(
        3,
        ge=1,
        description="Rounds without an entry after which a member is marked absent (unset: never).",
    )
