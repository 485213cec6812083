"""Tests for zkadapt.config: SessionConfig validation, session id, overrides, TOML round trip."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from zkadapt.config import (
    SessionConfig,
    config_from_dict,
    config_from_toml,
    default_party_names,
    example_config,
    load_config,
    with_overrides,
    with_public_keys,
)
from zkadapt.errors import ConfigError, ZkAdaptError

KEY_A = "a1" * 32
KEY_B = "b2" * 32
KEY_C = "c3" * 32

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture
def raw() -> dict[str, Any]:
    """The packaged example as a plain dict (a fresh copy per test)."""
    return copy.deepcopy(example_config("mnist").model_dump(mode="json"))


def config_error(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    return info.value


def write(tmp_path: Path, text: str, name: str = "session.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the packaged example -------------------------------------------------------------------


def test_packaged_example_loads_with_three_keyless_parties() -> None:
    config = example_config("mnist")
    assert isinstance(config, SessionConfig)
    assert config.party_names == ["alice", "bob", "carol"]
    assert not config.has_keys
    assert config.session.rounds >= 1
    assert config.quorum == 2


def test_config_error_is_a_zkadapt_error_with_exit_code_2() -> None:
    err = ConfigError("training.lr", "bad")
    assert isinstance(err, ZkAdaptError)
    assert err.exit_code == 2
    assert str(err) == "training.lr: bad"
    assert str(ConfigError("", "no key")) == "no key"


# --- unknown keys and wrong types -----------------------------------------------------------


def test_unknown_top_level_key_is_named(raw: dict[str, Any]) -> None:
    raw["trainng"] = {"lr": 0.1}
    err = config_error(raw)
    assert err.key == "trainng"
    assert str(err) == "trainng: unknown key"


def test_unknown_nested_key_is_named_with_its_dotted_path(raw: dict[str, Any]) -> None:
    raw["training"]["lrr"] = 0.1
    err = config_error(raw)
    assert err.key == "training.lrr"
    assert str(err) == "training.lrr: unknown key"


def test_unknown_key_in_a_party_table_names_its_index(raw: dict[str, Any]) -> None:
    raw["parties"][1]["pubkey"] = KEY_B
    err = config_error(raw)
    assert str(err) == "parties[1].pubkey: unknown key"


def test_unknown_key_in_toml_text_is_named() -> None:
    text = '[training]\nlrr = 0.1\n\n[[parties]]\nname = "alice"\n'
    with pytest.raises(ConfigError, match=r"^training\.lrr: unknown key$"):
        config_from_toml(text)


def test_wrong_type_names_the_key(raw: dict[str, Any]) -> None:
    raw["training"]["lr"] = "fast"
    err = config_error(raw)
    assert err.key == "training.lr"
    assert str(err).startswith("training.lr: ")


def test_wrong_type_for_a_whole_section_names_the_section(raw: dict[str, Any]) -> None:
    raw["training"] = 5
    assert config_error(raw).key == "training"


def test_several_errors_report_the_first_and_count_the_rest(raw: dict[str, Any]) -> None:
    raw["training"]["lrr"] = 0.1
    raw["training"]["epochs"] = 0
    err = config_error(raw)
    assert err.key.startswith("training.")
    assert "(and 1 more error(s))" in str(err)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("training", "lr", True), ("session", "rounds", True), ("session", "rounds", "3")],
)
def test_booleans_and_numeric_strings_are_not_numbers(
    raw: dict[str, Any], section: str, key: str, value: object
) -> None:
    raw[section][key] = value
    assert config_error(raw).key == f"{section}.{key}"


# --- impossible values ----------------------------------------------------------------------


def test_quorum_above_party_count_names_protocol_quorum(raw: dict[str, Any]) -> None:
    raw["protocol"]["quorum"] = 4
    err = config_error(raw)
    assert "protocol.quorum" in str(err)
    assert "3" in str(err)


def test_quorum_above_party_count_sets_the_error_key(raw: dict[str, Any]) -> None:
    raw["protocol"]["quorum"] = 4
    assert config_error(raw).key == "protocol.quorum"


def test_quorum_equal_to_party_count_is_accepted(raw: dict[str, Any]) -> None:
    raw["protocol"]["quorum"] = 3
    assert config_from_dict(raw).quorum == 3


def test_quorum_zero_is_rejected(raw: dict[str, Any]) -> None:
    raw["protocol"]["quorum"] = 0
    assert config_error(raw).key == "protocol.quorum"


@pytest.mark.parametrize("rounds", [0, -1])
def test_rounds_below_one_are_rejected(raw: dict[str, Any], rounds: int) -> None:
    raw["session"]["rounds"] = rounds
    assert config_error(raw).key == "session.rounds"


@pytest.mark.parametrize("section", ["storage", "channel"])
def test_unknown_backend_names_the_backend_key(raw: dict[str, Any], section: str) -> None:
    raw[section]["backend"] = "ftp"
    err = config_error(raw)
    assert err.key == f"{section}.backend"
    assert str(err).startswith(f"{section}.backend: ")
    assert "local" in str(err)  # the valid choice is listed


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("training", "momentum"), 1.0),
        (("training", "batch_size"), 0),
        (("data", "alpha"), 0.0),
        (("data", "partition"), "random"),
        (("model", "hidden"), [128, 0]),
        (("aggregation", "strategy"), "fedsgd"),
        (("protocol", "submit_timeout_s"), 0),
    ],
)
def test_out_of_range_values_name_their_key(
    raw: dict[str, Any], path: tuple[str, str], value: object
) -> None:
    raw[path[0]][path[1]] = value
    assert config_error(raw).key.startswith(".".join(path))


def test_duplicate_party_names_are_rejected(raw: dict[str, Any]) -> None:
    raw["parties"].append({"name": "alice"})
    err = config_error(raw)
    assert "duplicate" in str(err)
    assert "alice" in str(err)


@pytest.mark.parametrize("name", ["Alice", "1alice", "al ice", "", "a" * 33, "al.ice"])
def test_bad_party_name_is_rejected_with_its_index(raw: dict[str, Any], name: str) -> None:
    raw["parties"][2]["name"] = name
    assert config_error(raw).key == "parties[2].name"


def test_empty_party_list_is_rejected(raw: dict[str, Any]) -> None:
    raw["parties"] = []
    assert config_error(raw).key == "parties"


def test_missing_party_list_is_a_missing_key(raw: dict[str, Any]) -> None:
    del raw["parties"]
    assert str(config_error(raw)) == "parties: required key is missing"


@pytest.mark.parametrize("source", ["npz", "idx"])
def test_file_data_source_without_path_is_rejected(raw: dict[str, Any], source: str) -> None:
    raw["data"]["source"] = source
    err = config_error(raw)
    assert "data.path" in str(err)


def test_npz_data_source_with_path_is_accepted(raw: dict[str, Any]) -> None:
    raw["data"].update(source="npz", path="data.npz")
    assert config_from_dict(raw).data.path == "data.npz"


def test_some_parties_with_public_keys_and_some_without_is_rejected(
    raw: dict[str, Any],
) -> None:
    raw["parties"][0]["public_key"] = KEY_A
    err = config_error(raw)
    assert "public_key" in str(err)


def test_all_parties_with_public_keys_is_accepted(raw: dict[str, Any]) -> None:
    for party, key in zip(raw["parties"], (KEY_A, KEY_B, KEY_C), strict=True):
        party["public_key"] = key
    assert config_from_dict(raw).has_keys


@pytest.mark.parametrize("key", ["A1" * 32, "a1" * 31, "zz" * 32])
def test_malformed_public_key_names_the_party(raw: dict[str, Any], key: str) -> None:
    for party in raw["parties"]:
        party["public_key"] = KEY_A
    raw["parties"][1]["public_key"] = key
    assert config_error(raw).key == "parties[1].public_key"


# --- files ----------------------------------------------------------------------------------


def test_missing_file_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_directory_instead_of_file_error_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_not_toml_error_names_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "this is not toml\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "not valid TOML" in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_setting_in_a_file_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\nbackend = "ftp"\n\n[[parties]]\nname = "alice"\n')
    with pytest.raises(ConfigError, match=r"^storage\.backend: "):
        load_config(path)


# --- session id -----------------------------------------------------------------------------


def test_session_id_is_64_lowercase_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", example_config("mnist").session_id)


def test_same_file_gives_the_same_session_id(tmp_path: Path) -> None:
    path = write(tmp_path, example_config("mnist").to_toml())
    assert load_config(path).session_id == load_config(path).session_id
    assert load_config(path).session_id == example_config("mnist").session_id


def test_session_id_ignores_formatting_and_key_order(tmp_path: Path) -> None:
    config = example_config("mnist")
    dumped = config.model_dump(mode="json", exclude_none=True)
    reordered = {k: dumped[k] for k in reversed(list(dumped))}
    text = "# a comment\n\n" + tomli_w.dumps(reordered, indent=8)
    assert text != config.to_toml()
    assert load_config(write(tmp_path, text)).session_id == config.session_id


MUTATIONS: dict[str, Mutation] = {
    "rounds": lambda r: r["session"].update(rounds=r["session"]["rounds"] + 1),
    "seed": lambda r: r["session"].update(seed=7),
    "name": lambda r: r["session"].update(name="other"),
    "lr": lambda r: r["training"].update(lr=0.02),
    "hidden": lambda r: r["model"].update(hidden=[64]),
    "partition": lambda r: r["data"].update(partition="dirichlet"),
    "max_train": lambda r: r["data"].update(max_train=100),
    "quorum": lambda r: r["protocol"].update(quorum=3),
    "storage_path": lambda r: r["storage"].update(path="elsewhere"),
    "party_name": lambda r: r["parties"][2].update(name="carla"),
    "party_order": lambda r: r["parties"].reverse(),
    "extra_party": lambda r: r["parties"].append({"name": "dave"}),
}


@pytest.mark.parametrize("change", sorted(MUTATIONS))
def test_changing_any_value_changes_the_session_id(raw: dict[str, Any], change: str) -> None:
    before = config_from_dict(raw).session_id
    MUTATIONS[change](raw)
    assert config_from_dict(raw).session_id != before


def test_adding_public_keys_changes_the_session_id() -> None:
    config = example_config("mnist")
    keyed = with_public_keys(config, {"alice": KEY_A, "bob": KEY_B, "carol": KEY_C})
    assert keyed.has_keys
    assert keyed.session_id != config.session_id


# --- overrides ------------------------------------------------------------------------------


def test_rounds_override_changes_rounds_only() -> None:
    config = example_config("mnist")
    changed = with_overrides(config, rounds=9)
    assert changed.session.rounds == 9
    assert changed.parties == config.parties
    assert changed.session_id != config.session_id


def test_no_overrides_keep_the_config_and_its_id() -> None:
    config = example_config("mnist")
    same = with_overrides(config)
    assert same == config
    assert same.session_id == config.session_id


def test_parties_override_uses_default_names() -> None:
    config = with_overrides(example_config("mnist"), parties=4)
    assert [p.name for p in config.parties] == ["alice", "bob", "carol", "dave"]


def test_parties_override_beyond_ten_continues_with_numbered_names() -> None:
    config = with_overrides(example_config("mnist"), parties=12)
    names = [p.name for p in config.parties]
    assert names[:10] == list(default_party_names(10))
    assert names[9] == "judy"
    assert names[10:] == ["party-11", "party-12"]
    assert len(set(names)) == 12


def test_parties_override_drops_public_keys() -> None:
    keyed = with_public_keys(
        example_config("mnist"), {"alice": KEY_A, "bob": KEY_B, "carol": KEY_C}
    )
    config = with_overrides(keyed, parties=3)
    assert not config.has_keys
    assert all(p.public_key is None for p in config.parties)


def test_parties_override_resets_a_quorum_that_no_longer_fits(raw: dict[str, Any]) -> None:
    raw["protocol"]["quorum"] = 3
    config = with_overrides(config_from_dict(raw), parties=2)
    assert config.protocol.quorum is None
    assert config.quorum == 2


def test_parties_override_keeps_a_quorum_that_still_fits(raw: dict[str, Any]) -> None:
    raw["protocol"]["quorum"] = 2
    config = with_overrides(config_from_dict(raw), parties=5)
    assert config.protocol.quorum == 2
    assert config.quorum == 2


def test_parties_override_below_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        with_overrides(example_config("mnist"), parties=0)
    assert info.value.key == "--parties"


def test_rounds_override_of_zero_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        with_overrides(example_config("mnist"), rounds=0)
    assert info.value.key == "session.rounds"


# --- TOML round trip and quorum -------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: example_config("mnist"),
        lambda: with_overrides(example_config("mnist"), parties=12, rounds=2),
        lambda: with_public_keys(
            example_config("mnist"), {"alice": KEY_A, "bob": KEY_B, "carol": KEY_C}
        ),
    ],
    ids=["example", "twelve-parties", "with-keys"],
)
def test_to_toml_round_trips_to_an_equal_config(build: Callable[[], SessionConfig]) -> None:
    config = build()
    again = config_from_toml(config.to_toml())
    assert again == config
    assert again.session_id == config.session_id


def test_to_toml_round_trips_optional_values(raw: dict[str, Any]) -> None:
    raw["protocol"]["quorum"] = 3
    raw["data"].update(source="npz", path="d.npz", max_train=10, max_test=5)
    config = config_from_dict(raw)
    again = config_from_toml(config.to_toml())
    assert again == config
    assert again.protocol.quorum == 3
    assert again.session_id == config.session_id


@pytest.mark.parametrize(
    ("parties", "majority"),
    [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (10, 6), (11, 6)],
)
def test_default_quorum_is_a_strict_majority(parties: int, majority: int) -> None:
    config = with_overrides(example_config("mnist"), parties=parties)
    assert config.protocol.quorum is None
    assert config.quorum == majority
    assert 2 * config.quorum > parties


def test_party_names_are_sorted(raw: dict[str, Any]) -> None:
    raw["parties"].reverse()
    assert config_from_dict(raw).party_names == ["alice", "bob", "carol"]


def test_party_override_resets_privacy_settings_that_no_longer_fit() -> None:
    from zkadapt.config import config_from_dict, example_config, with_overrides

    raw = example_config("mnist").model_dump(mode="json")
    raw["privacy"].update(scheme="paillier", threshold=3, dealer="carol")
    smaller = with_overrides(config_from_dict(raw), parties=2)
    assert smaller.privacy.threshold is None and smaller.threshold == 2
    assert smaller.dealer == "alice"


def test_a_decryption_threshold_of_one_is_refused() -> None:
    from zkadapt.config import config_from_dict, example_config
    from zkadapt.errors import ConfigError

    raw = example_config("mnist").model_dump(mode="json")
    raw["privacy"].update(scheme="paillier", threshold=1)
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert info.value.key == "privacy.threshold" and "single party" in str(info.value)


def test_encrypted_updates_need_a_quorum_of_two() -> None:
    """A sum of one accepted update is that party's update: never decrypt it."""
    from zkadapt.config import config_from_dict, example_config
    from zkadapt.errors import ConfigError

    raw = example_config("mnist").model_dump(mode="json")
    raw["privacy"].update(scheme="paillier", threshold=2)
    raw["protocol"]["quorum"] = 1
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert info.value.key == "protocol.quorum" and "single party" in str(info.value)
    raw["privacy"]["scheme"] = "none"
    assert config_from_dict(raw).quorum == 1  # in the clear, a quorum of 1 is the user's call


# --- key sources: distributed keys and an external key-generation centre -------------------


def test_distributed_keys_are_accepted_with_three_parties(raw: dict[str, Any]) -> None:
    raw["privacy"].update(scheme="paillier", keygen="distributed")
    config = config_from_dict(raw)
    assert config.privacy.keygen == "distributed" and config.threshold == 2


def test_distributed_keys_need_two_t_minus_one_parties(raw: dict[str, Any]) -> None:
    raw["parties"].append({"name": "dave"})  # 4 parties: default threshold 3 needs 5
    raw["privacy"].update(scheme="paillier", keygen="distributed")
    err = config_error(raw)
    assert err.key == "privacy.keygen" and err.exit_code == 2
    assert "needs at least 2*threshold-1 = 5 parties" in str(err) and "\n" not in str(err)
    raw["privacy"]["threshold"] = 2
    assert config_from_dict(raw).threshold == 2


@pytest.mark.parametrize("key", ["dealer", "kgc_public_key"])
def test_distributed_keys_have_no_dealer(raw: dict[str, Any], key: str) -> None:
    raw["privacy"].update(
        scheme="paillier", keygen="distributed", **{key: "alice" if key == "dealer" else KEY_A}
    )
    assert config_error(raw).key == f"privacy.{key}"


def test_an_external_kgc_is_the_default_dealer_name(raw: dict[str, Any]) -> None:
    raw["privacy"].update(scheme="paillier", kgc_public_key=KEY_A)
    config = config_from_dict(raw)
    assert config.dealer == "kgc" and config.external_dealer
    raw["privacy"]["dealer"] = "centre"
    assert config_from_dict(raw).dealer == "centre"


def test_an_external_kgc_cannot_be_named_like_a_party_or_use_a_partys_key(
    raw: dict[str, Any],
) -> None:
    raw["privacy"].update(scheme="paillier", kgc_public_key=KEY_A, dealer="bob")
    assert "is a party" in str(config_error(raw))
    raw["privacy"]["dealer"] = None
    for party, key in zip(raw["parties"], (KEY_A, KEY_B, KEY_C), strict=True):
        party["public_key"] = key
    err = config_error(raw)
    assert err.key == "privacy.kgc_public_key" and "party's key" in str(err)


def test_a_dealer_outside_the_parties_needs_a_kgc_key(raw: dict[str, Any]) -> None:
    raw["privacy"].update(scheme="paillier", dealer="kgc")
    err = config_error(raw)
    assert err.key == "privacy.dealer" and "privacy.kgc_public_key" in str(err)


def test_a_layer1_escrow_needs_cardano_and_every_payment_key_hash(raw: dict[str, Any]) -> None:
    """``escrow.deadline`` puts the escrow on layer 1; the keys leave old session ids alone."""
    before = config_from_dict(copy.deepcopy(raw)).session_id
    on_l1 = copy.deepcopy(raw)
    on_l1["escrow"] = {"deadline": 1_767_225_600}
    assert config_error(on_l1).key == "escrow.deadline"
    on_l1["cardano"] = {"network": "preprod"}
    config = config_from_dict(copy.deepcopy(on_l1))
    assert config.escrow.deadline_ms == 1_767_225_600_000 and config.session_id != before
    on_l1["cardano"]["payment_keys"] = "payment/{party}.skey"
    assert config_error(on_l1).key == "parties.payment_key_hash"
    for party in on_l1["parties"]:
        party["payment_key_hash"] = "ab" * 28
    assert config_from_dict(on_l1).parties[0].payment_key_hash == "ab" * 28
    bad = copy.deepcopy(on_l1)
    bad["parties"][0]["payment_key_hash"] = "AB" * 28
    assert config_error(bad).key.startswith("parties")
    assert config_from_dict(copy.deepcopy(raw)).session_id == before


# -- [membership] (docs/membership.md) ---------------------------------------------------------


def test_without_membership_the_session_id_is_unchanged_and_with_it_it_changes(
    raw: dict[str, Any],
) -> None:
    plain = config_from_dict(raw)
    assert plain.membership is None and plain.membership_rules is None
    assert "membership" not in plain.canonical_json().decode()
    joined = config_from_dict(raw | {"membership": {"admission": "open"}})
    assert joined.session_id != plain.session_id
    rules = joined.membership_rules
    assert rules is not None and rules.admission == "open" and rules.max_parties == 16
    assert joined.channel_rules().membership == rules


@pytest.mark.parametrize(
    ("membership", "key", "words"),
    [
        ({"max_parties": 2}, "membership.max_parties", "below the 3 listed parties"),
        ({"admission": "vote", "votes": 4}, "membership.votes", "exceeds the 3 listed"),
        ({"admission": "maybe"}, "membership.admission", ""),
        ({"absent_rounds": 0}, "membership.absent_rounds", ""),
    ],
)
def test_membership_settings_are_checked_against_the_parties(
    raw: dict[str, Any], membership: dict[str, Any], key: str, words: str
) -> None:
    error = config_error(raw | {"membership": membership})
    assert error.key == key and words in str(error)


def test_a_layer1_escrow_admits_newcomers_only_by_the_vote_of_members_who_checked_their_lock(
    raw: dict[str, Any],
) -> None:
    on_l1 = raw | {"escrow": {"deadline": 1_767_225_600}, "cardano": {"network": "preprod"}}
    assert config_from_dict(copy.deepcopy(on_l1) | {"membership": {"admission": "fixed"}})
    voted = config_from_dict(copy.deepcopy(on_l1) | {"membership": {"admission": "vote"}})
    rules = voted.membership_rules
    assert rules is not None and rules.lock_required
    assert rules.min_deposit == voted.escrow.deposit_lovelace == 10_000_000
    error = config_error(on_l1 | {"membership": {"admission": "open"}})
    assert error.key == "membership.admission" and 'use admission = "vote"' in str(error)
    # without a layer-1 escrow nothing is required of a request
    plain = config_from_dict(copy.deepcopy(raw) | {"membership": {"admission": "open"}})
    assert plain.membership_rules is not None
    assert not plain.membership_rules.lock_required and plain.membership_rules.min_deposit == 0


def test_an_external_key_centre_cannot_serve_newcomers(raw: dict[str, Any]) -> None:
    privacy = {"scheme": "paillier", "kgc_public_key": "ab" * 32}
    error = config_error(raw | {"privacy": privacy, "membership": {"admission": "open"}})
    assert error.key == "membership.admission" and "key-generation centre" in str(error)
