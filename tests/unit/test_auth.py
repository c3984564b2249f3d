"""API keys: hashed at rest, roles ordered viewer < operator < admin, clear refusals."""

import pytest
import yaml

from surveillance_ray.auth import Authenticator, Forbidden, Role, Unauthorized, key_hash, new_key
from surveillance_ray.cli import main
from surveillance_ray.config import ApiKey, ConfigError, load_settings


def test_a_new_key_is_stored_as_its_hash_only() -> None:
    key, entry = new_key("alice", "operator")
    assert key.startswith("sr_") and len(key) > 40 and key not in entry.model_dump_json()
    assert entry.sha256 == key_hash(key) and entry.role == "operator"


def test_roles_are_checked_in_order() -> None:
    keys = {role: new_key(role, role) for role in ("viewer", "operator", "admin")}
    auth = Authenticator([entry for _, entry in keys.values()])
    assert auth.require(keys["viewer"][0], Role.VIEWER) == ("viewer", Role.VIEWER)
    assert auth.require(keys["admin"][0], Role.OPERATOR) == ("admin", Role.ADMIN)
    with pytest.raises(Forbidden, match="key 'viewer' has role viewer; this needs operator"):
        auth.require(keys["viewer"][0], Role.OPERATOR)
    with pytest.raises(Forbidden, match="needs admin"):
        auth.require(keys["operator"][0], Role.ADMIN)


@pytest.mark.parametrize("presented, message", [(None, "missing API key"), ("", "missing API key"),
                                                ("sr_forged", "invalid API key")])
def test_missing_and_unknown_keys_are_unauthorized(presented: str | None, message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        Authenticator([new_key("a", "admin")[1]]).require(presented, Role.VIEWER)


def test_config_refuses_plain_keys_and_duplicate_names() -> None:
    with pytest.raises(ConfigError, match="sha256"):
        load_settings(api={"keys": [{"name": "a", "role": "viewer", "sha256": "sr_not_a_hash"}]})
    entry = new_key("a", "viewer")[1].model_dump()
    with pytest.raises(ConfigError, match="duplicate key names"):
        load_settings(api={"keys": [entry, entry]})
    with pytest.raises(ConfigError, match="role"):
        load_settings(api={"keys": [{**entry, "role": "root"}]})


def test_the_cli_prints_a_key_once_and_an_entry_that_accepts_it(capsys: pytest.CaptureFixture) -> None:
    assert main(["api-key", "--name", "ops", "--role", "operator"]) == 0
    out, err = capsys.readouterr()
    [entry] = [ApiKey(**e) for e in yaml.safe_load(out)]
    key = err.split("shown only now: ")[1].split()[0]
    assert key not in out and Authenticator([entry]).require(key, Role.OPERATOR) == ("ops", Role.OPERATOR)
