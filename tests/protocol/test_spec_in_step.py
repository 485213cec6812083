"""specs/RoundProtocol.tla stays in step with the Python model checker (no TLC needed).

The names of the TLA+ actions and invariants are the ones ``model_check`` reports, every
action of the machine that the model executes is an operator of the spec, and the .cfg
checks the Python model's default constants.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zkadapt.protocol import machine, model_check

SPECS = Path(__file__).resolve().parents[2] / "specs"
TLA = SPECS / "RoundProtocol.tla"
CFG = SPECS / "RoundProtocol.cfg"
BROKEN_CFG = SPECS / "RoundProtocolBroken.cfg"
MALICIOUS_CFG = SPECS / "RoundProtocolMalicious.cfg"
JOINING_CFG = SPECS / "RoundProtocolJoining.cfg"

#: Machine actions that are no step of their own: ``Wait`` is what ``Timeout`` ends
#: (``WaitCut``/``WaitShares`` in the spec), ``Finish`` is ``AllDone``.
NOT_STEPS = {"Wait", "Finish"}


def _strip_comments(text: str) -> str:
    text = re.sub(r"\(\*.*?\*\)", "", text, flags=re.S)
    return re.sub(r"\\\*[^\n]*", "", text)


@pytest.fixture(scope="module")
def tla() -> str:
    return _strip_comments(TLA.read_text())


def _cfg(path: Path) -> str:
    return _strip_comments(path.read_text())


def _defined(tla: str, name: str) -> bool:
    return re.search(rf"^{re.escape(name)}(\([^)]*\))?\s*==", tla, flags=re.M) is not None


def _section(cfg: str, keyword: str) -> set[str]:
    """The names listed after a .cfg keyword (up to the next keyword)."""
    match = re.search(rf"^{keyword}\b(.*?)(?=^[A-Z_]+\b|\Z)", cfg, flags=re.M | re.S)
    return set(match.group(1).split()) if match else set()


def _constants(cfg: str) -> dict[str, str]:
    return {
        name: value.strip()
        for name, value in re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", cfg, flags=re.M)
    }


def test_the_module_is_named_after_its_file(tla: str) -> None:
    header = re.search(r"^-{4,}\s*MODULE\s+(\w+)\s*-{4,}\s*$", tla, flags=re.M)
    assert header is not None and header.group(1) == TLA.stem == "RoundProtocol"
    assert re.search(r"^={4,}\s*$", tla, flags=re.M), "the module has no closing ===="


@pytest.mark.parametrize("name", [*model_check.ACTIONS, *model_check.INVARIANTS])
def test_every_model_check_action_and_invariant_is_an_operator(tla: str, name: str) -> None:
    assert _defined(tla, name), f"{name} is not defined in {TLA.name}"


def _machine_actions() -> list[str]:
    names = [cls.__name__ for cls in machine.Action.__subclasses__()]
    assert {"TrainAndSubmit", "Combine", "Announce"} <= set(names)
    return sorted(set(names) - NOT_STEPS)


@pytest.mark.parametrize("name", _machine_actions())
def test_every_machine_action_the_model_executes_is_a_sub_action_of_act(
    tla: str, name: str
) -> None:
    assert _defined(tla, name), f"machine.{name} has no operator in {TLA.name}"
    act = re.search(r"^Act\(p\)\s*==(.*?)(?=^\S)", tla, flags=re.M | re.S)
    assert act is not None and re.search(rf"\\/\s*{name}\(p\)", act.group(1)), (
        f"{name}(p) is not a disjunct of Act(p)"
    )


def test_the_spec_has_the_parts_a_tlc_run_needs(tla: str) -> None:
    for name in ("Init", "Next", "Spec", "TypeOK", "Fairness", "Submit", "ShareToCombine"):
        assert _defined(tla, name), name
    assert re.search(r"^Spec\s*==\s*Init\s*/\\\s*\[\]\[Next\]_vars\s*/\\\s*Fairness", tla, re.M)
    extends = re.search(r"^EXTENDS\s+(.*)$", tla, flags=re.M)
    assert extends is not None
    assert {"Naturals", "Sequences", "FiniteSets", "TLC"} <= {
        m.strip() for m in extends.group(1).split(",")
    }


def test_the_cfg_checks_every_invariant_and_progress() -> None:
    cfg = _cfg(CFG)
    safety = set(model_check.INVARIANTS) - {"Progress"}
    assert _section(cfg, "INVARIANTS") == {"TypeOK", *safety}
    assert _section(cfg, "PROPERTIES") == {"Progress"}
    assert _section(cfg, "SPECIFICATION") == {"Spec"}


def _names(value: str) -> tuple[str, ...]:
    """The model values of a .cfg set (``{alice, bob}``), in their order."""
    names = re.fullmatch(r"\{(.*)\}", value)
    assert names is not None, value
    return tuple(p.strip() for p in names.group(1).split(",") if p.strip())


def test_the_cfg_constants_are_the_python_models_defaults(tla: str) -> None:
    model = model_check.Model()
    constants = _constants(_cfg(CFG))
    assert _names(constants["Parties"]) == model.parties
    assert int(constants["T"]) == model.threshold
    assert int(constants["Q"]) == model.quorum
    assert int(constants["Rounds"]) == model.rounds
    assert int(constants["MaxCrashes"]) == model.crashes
    assert constants["FairDeadlines"] == "TRUE"  # Progress needs fair deadlines
    assert constants["BadUpdates"] == "{}" and not model.bad_updates
    assert constants["BadShares"] == "{}" and not model.bad_shares
    assert constants["ShareSlack"] == "0"
    assert constants["KeyGen"] == '"none"' and model.keygen is None  # keys abstracted
    assert constants["Dealer"] == model.dealer
    assert int(constants["RefreshEvery"]) == (model.refresh_every or 0)
    assert int(constants["DkgRounds"]) == model.dkg_rounds
    assert constants["DealerSilent"] == str(model.dealer_silent).upper()
    assert int(constants["CloseVotes"]) == model.votes  # the default: t
    assert int(constants["MinAccepted"]) == model.min_accepted
    assert constants["MaliciousParties"] == "{}" and model.malicious is None
    assert int(constants["MaliciousPosts"]) == 0
    assert constants["Newcomers"] == "{}" and not model.newcomers
    assert constants["Admission"] == f'"{model.admission}"'
    assert int(constants["Votes"]) == model.admit_votes
    declared = re.search(r"^CONSTANTS(.*?)^ASSUME", tla, flags=re.M | re.S)
    assert declared is not None
    assert set(re.findall(r"\b([A-Z]\w*)\b", declared.group(1))) == set(constants)


def test_the_broken_variant_combines_fewer_than_t_shares(tla: str) -> None:
    constants = _constants(_cfg(BROKEN_CFG))
    assert int(constants["ShareSlack"]) == 1 and int(constants["T"]) >= 1
    assert "ThresholdSafety" in _section(_cfg(BROKEN_CFG), "INVARIANTS")
    assert re.search(r"^Needed\s*==\s*T\s*-\s*ShareSlack\s*$", tla, flags=re.M)


def test_the_malicious_cfg_is_the_python_malicious_model() -> None:
    """RoundProtocolMalicious.cfg checks the constants of the default-run malicious model
    (``MALICIOUS_MODELS["1-round-fair"]`` in tests/protocol/test_model_check.py), every
    invariant and Progress."""
    model = model_check.Model(malicious="carol", rounds=1, crashes=0, fair_deadlines=True)
    cfg = _cfg(MALICIOUS_CFG)
    constants = _constants(cfg)
    assert _names(constants["Parties"]) == model.parties
    assert _names(constants["MaliciousParties"]) == (model.malicious,)
    assert int(constants["MaliciousPosts"]) == model.malicious_posts
    assert int(constants["CloseVotes"]) == model.votes
    assert int(constants["MinAccepted"]) == model.min_accepted
    for name, value in (("T", model.threshold), ("Q", model.quorum), ("Rounds", model.rounds)):
        assert int(constants[name]) == value, name
    assert int(constants["MaxCrashes"]) == model.crashes
    assert constants["FairDeadlines"] == str(model.fair_deadlines).upper()
    assert constants.keys() == _constants(_cfg(CFG)).keys()
    safety = set(model_check.INVARIANTS) - {"Progress"}
    assert _section(cfg, "INVARIANTS") == {"TypeOK", *safety}
    assert _section(cfg, "PROPERTIES") == {"Progress"}


def test_the_joining_cfg_is_the_python_joining_model() -> None:
    """RoundProtocolJoining.cfg checks the constants of ``JOINING_MODEL``
    (tests/protocol/test_model_check.py): a newcomer, one crash, every invariant and Progress."""
    from tests.protocol.test_model_check import JOINING_MODEL as model

    cfg = _cfg(JOINING_CFG)
    constants = _constants(cfg)
    assert _names(constants["Parties"]) == model.parties
    assert _names(constants["Newcomers"]) == model.newcomers
    assert constants["Admission"] == f'"{model.admission}"'
    assert int(constants["Votes"]) == model.admit_votes
    for name, value in (("T", model.threshold), ("Q", model.quorum), ("Rounds", model.rounds)):
        assert int(constants[name]) == value, name
    assert int(constants["MaxCrashes"]) == model.crashes
    assert int(constants["CloseVotes"]) == model.votes
    assert constants["FairDeadlines"] == str(model.fair_deadlines).upper()
    assert constants.keys() == _constants(_cfg(CFG)).keys()
    safety = set(model_check.INVARIANTS) - {"Progress"}
    assert _section(cfg, "INVARIANTS") == {"TypeOK", *safety}
    assert _section(cfg, "PROPERTIES") == {"Progress"}


def test_membership_is_in_the_spec(tla: str) -> None:
    """The newcomer's actions and the membership operators the README maps."""
    for name in ("RequestJoin", "Advance", "Admit", "MembersAt", "AdmittedFrom", "JoinRefused"):
        assert _defined(tla, name), name
    assert re.search(r"^RECURSIVE MembersBefore", tla, flags=re.M)
    assert re.search(r"\\/\s*Admit\(p\)", tla), "Admit(p) is not a disjunct of Next"
