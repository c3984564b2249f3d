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


def test_tokens_carry_the_keys_role_and_expire() -> None:
    import jwt

    key, entry = new_key("wall", "operator")
    auth = Authenticator([entry], jwt_secret="s" * 32, token_ttl_s=60)
    token = auth.issue(*auth.identify_key(key))
    assert token.count(".") == 2 and auth.require(token, Role.OPERATOR) == ("wall", Role.OPERATOR)
    with pytest.raises(Forbidden, match="needs admin"):
        auth.require(token, Role.ADMIN)
    with pytest.raises(Unauthorized, match="invalid API key"):  # a token is not a key: it buys no new token
        auth.identify_key(token)
    forged = jwt.encode({"sub": "wall", "role": "admin", "iss": "surveillance-ray", "iat": 0, "exp": 2**40},
                        "another secret of at least thirty-two bytes", algorithm="HS256")
    with pytest.raises(Unauthorized, match="invalid token"):
        auth.require(forged, Role.VIEWER)
    unknown_role = jwt.encode({"sub": "x", "role": "root", "iss": "surveillance-ray", "iat": 0, "exp": 2**40},
                              "s" * 32, algorithm="HS256")
    with pytest.raises(Unauthorized, match="invalid token"):
        auth.require(unknown_role, Role.VIEWER)
    expired = Authenticator([entry], jwt_secret="s" * 32, token_ttl_s=-1).issue("wall", Role.OPERATOR)
    with pytest.raises(Unauthorized, match="token expired"):
        auth.require(expired, Role.VIEWER)
    with pytest.raises(Unauthorized, match="tokens are off"):
        Authenticator([entry]).issue("wall", Role.VIEWER)


def test_tls_and_token_settings_are_checked(tmp_path) -> None:
    with pytest.raises(ConfigError, match="go together"):
        load_settings(api={"tls_certfile": __file__})
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(api={"tls_certfile": str(tmp_path / "no.pem"), "tls_keyfile": __file__})
    short = tmp_path / "secret"
    short.write_text("too short")
    with pytest.raises(ConfigError, match="under 32 bytes"):
        load_settings(api={"jwt_secret_file": str(short)})
