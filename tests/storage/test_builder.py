"""Storage settings in the session file and the one function that opens a party's store."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.seaweed import SeaweedS3
from zkadapt.assembly import open_party_store, party_locations
from zkadapt.config import SessionConfig, config_from_dict, example_config
from zkadapt.errors import ConfigError, StorageError
from zkadapt.storage.at_rest import KEY_ENV, EncryptedStore
from zkadapt.storage.local import LocalStore
from zkadapt.storage.location import BucketLocation


def _raw(**storage: Any) -> dict[str, Any]:
    raw = copy.deepcopy(example_config("mnist").model_dump(mode="json"))
    raw["storage"].update(storage)
    return raw


def _config(**storage: Any) -> SessionConfig:
    return config_from_dict(_raw(**storage))


def _error(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    return info.value


def test_default_is_local_and_every_party_gets_its_own_bucket() -> None:
    config = _config(backend="s3")
    assert example_config("mnist").storage.backend == "local"
    assert party_locations(config) == {
        p: BucketLocation("s3://", f"zkadapt-{p}") for p in ("alice", "bob", "carol")
    }


def test_a_party_may_name_its_own_bucket_and_prefix_templates_apply() -> None:
    raw = _raw(backend="storj", bucket="shared-fl", prefix="runs/{party}")
    raw["parties"][1]["bucket"] = "bobs-bucket"
    locations = party_locations(config_from_dict(raw))
    assert locations["alice"] == BucketLocation("sj://", "shared-fl", "runs/alice/")
    assert locations["bob"] == BucketLocation("sj://", "bobs-bucket", "runs/bob/")
    assert locations["alice"].uri == "sj://shared-fl/runs/alice/"


def test_profile_template_gives_each_party_its_own_profile() -> None:
    storage = _config(backend="s3", profile="lab-{party}").storage
    assert storage.profile_for("bob") == "lab-bob"
    assert storage.profile_for(None) is None  # a reader uses the default credentials
    assert _config(backend="s3", profile="fixed").storage.profile_for(None) == "fixed"
    storage = _config(backend="s3", read_profile="{party}-reads-{owner}").storage
    assert storage.read_profile_for("alice", "bob") == "alice-reads-bob"
    assert storage.read_profile_for("alice", "alice") is None  # own bucket: own profile
    assert storage.read_profile_for(None, "bob") is None
    assert _config(backend="s3", read_profile="ro-{owner}").storage.read_profile_for(
        None, "bob"
    ) == ("ro-bob")


@pytest.mark.parametrize(
    ("storage", "key", "says"),
    [
        ({"backend": "s3", "bucket": "Zkadapt_{party}"}, "storage.bucket", "lowercase"),
        ({"backend": "s3", "bucket": "zk-{user}"}, "storage.bucket", "{party}"),
        ({"backend": "s3", "profile": "zk-{owner}"}, "storage.profile", "{owner}"),
        ({"backend": "local", "read_profile": "ro"}, "storage.read_profile", "'s3'"),
        ({"backend": "s3", "bucket": "one-for-all"}, "storage.bucket", "same place"),
        ({"backend": "s3", "prefix": "../{party}"}, "storage.prefix", "segment"),
        ({"backend": "s3", "endpoint": "gateway.storjshare.io"}, "storage.endpoint", "URL"),
        ({"backend": "local", "endpoint": "http://127.0.0.1:1"}, "storage.endpoint", "'s3'"),
        ({"backend": "storj", "profile": "p"}, "storage.profile", "environment"),
        ({"backend": "ftp"}, "storage.backend", "'storj'"),
        ({"backend": "s3", "part_size_mb": 4}, "storage.part_size_mb", "5"),
    ],
)
def test_bad_storage_settings_name_the_key(storage: dict[str, Any], key: str, says: str) -> None:
    err = _error(_raw(**storage))
    assert err.key == key and says in str(err) and "\n" not in str(err)


def test_a_party_prefix_separates_parties_in_one_bucket_and_bucket_needs_a_bucket_backend() -> None:
    raw = _raw(backend="s3", bucket="shared", prefix="{party}")
    raw["parties"][0]["name"] = "al"
    raw["parties"][1]["name"] = "al-b"  # "al/" is not a prefix of "al-b/": fine
    config_from_dict(raw)
    raw = _raw()
    raw["parties"][2]["bucket"] = "carols"
    assert _error(raw).key == "parties[2].bucket"


def test_storage_does_not_change_the_experiment_seed() -> None:
    assert _config(backend="s3").seed_id == example_config("mnist").seed_id


def test_local_store_opens_under_out_and_encrypt_wraps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_party_store(_config(), "alice", tmp_path)
    assert isinstance(store, LocalStore) and store.root == tmp_path / "store"
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=r"^storage\.encrypt: "):
        open_party_store(_config(encrypt=True), "alice", tmp_path)
    monkeypatch.setenv(KEY_ENV, "11" * 32)
    wrapped = open_party_store(_config(encrypt=True), "alice", tmp_path)
    assert isinstance(wrapped, EncryptedStore)
    assert wrapped.get(wrapped.put("k.bin", b"v")) == b"v"


def test_s3_store_opens_with_the_partys_profile_and_checks_its_bucket(
    s3_server: SeaweedS3, tmp_path: Path
) -> None:
    settings = {"backend": "s3", "endpoint": s3_server.endpoint, "retries": 1, "backoff_s": 0.01}
    store = open_party_store(_config(**settings, profile="zkadapt-{party}"), "bob", tmp_path)
    assert store.location_of("bob") == "s3://zkadapt-bob/"
    with pytest.raises(StorageError) as info:
        open_party_store(_config(**settings, profile="zkadapt-wrong"), "carol", tmp_path)
    assert str(info.value).startswith("s3://zkadapt-carol/: party carol is denied")
