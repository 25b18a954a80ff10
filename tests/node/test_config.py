"""node/config.py: TOML, environment overrides, explicit bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import NodeConfig, default_data_dir, load_config, write_config
from node.errors import ConfigError


def test_defaults_round_trip_through_toml(tmp_path: Path) -> None:
    cfg = NodeConfig(origin="lyon.example/liquide", rate_limit_exempt=("10.0.0.0/8",))
    write_config(tmp_path, cfg)
    assert load_config(tmp_path, env={}) == cfg


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, NodeConfig(origin="a.example"))
    env = {
        "LIQUIDE_MAX_BODY_BYTES": "2048",
        "LIQUIDE_CHECKPOINT_INTERVAL_S": "0.5",
        "LIQUIDE_RATE_LIMIT_EXEMPT": "127.0.0.1, ::1",
        "LIQUIDE_LOG_FORMAT": "json",
    }
    cfg = load_config(tmp_path, env=env)
    assert cfg.max_body_bytes == 2048
    assert cfg.checkpoint_interval_s == 0.5
    assert cfg.rate_limit_exempt == ("127.0.0.1", "::1")
    assert cfg.log_format == "json"


def test_origin_is_never_taken_from_the_environment(tmp_path: Path) -> None:
    write_config(tmp_path, NodeConfig(origin="a.example"))
    assert load_config(tmp_path, env={"LIQUIDE_ORIGIN": "evil.example"}).origin == "a.example"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"LIQUIDE_MAX_BODY_BYTES": "10"}, "max_body_bytes = 10 is outside its bounds"),
        ({"LIQUIDE_PAGE_SIZE": "many"}, "LIQUIDE_PAGE_SIZE='many' is not a valid page_size"),
        ({"LIQUIDE_CLOCK_SKEW_S": "-1"}, "clock_skew_s = -1 is outside"),
        ({"LIQUIDE_LOG_FORMAT": "xml"}, "log_format must be"),
        ({"LIQUIDE_RATE_LIMIT_EXEMPT": "not-an-ip"}, "is not an address or network"),
    ],
)
def test_out_of_bounds_values_are_named(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    write_config(tmp_path, NodeConfig(origin="a.example"))
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        load_config(tmp_path, env=env)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(tmp_path, env={})
    assert info.value.code == "not_initialised"
    (tmp_path / "liquide.toml").write_text('[node]\norigin = "a.example"\ncolour = "blue"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(tmp_path, env={})
    (tmp_path / "liquide.toml").write_text("[node\n")
    with pytest.raises(ConfigError, match=r"liquide\.toml"):
        load_config(tmp_path, env={})
    (tmp_path / "liquide.toml").write_text('[node]\norigin = "has space"\n')
    with pytest.raises(ConfigError, match="not a log origin"):
        load_config(tmp_path, env={})


def test_default_data_dir_follows_liquide_home(tmp_path: Path) -> None:
    assert default_data_dir({"LIQUIDE_HOME": str(tmp_path)}) == tmp_path / "node"
