"""Settings come from defaults < TOML file < environment < flags, and bad ones name their source."""

from pathlib import Path

import pytest

from agentlib.config import AgentConfig, ConfigError, load


def test_defaults_and_agent_specific_data_dir():
    cfg = load(AgentConfig, "kvmagent", [], env={}, default_port=7070)
    assert cfg.port == 7070 and cfg.host == "0.0.0.0"
    assert cfg.data_dir == Path("/var/lib/zfleet/kvmagent")


def test_precedence_flag_over_env_over_file(tmp_path):
    conf = tmp_path / "agent.toml"
    conf.write_text('port = 1111\nthreads = 3\nlog_level = "DEBUG"\n')
    env = {"ZFLEET_KVMAGENT_PORT": "2222", "ZFLEET_KVMAGENT_THREADS": "5"}
    cfg = load(AgentConfig, "kvmagent", ["--config", str(conf), "--port", "3333"], env=env)
    assert cfg.port == 3333  # flag
    assert cfg.threads == 5  # environment
    assert cfg.log_level == "DEBUG"  # file


def test_bad_value_names_setting_and_source(tmp_path):
    with pytest.raises(ConfigError, match=r"port \(environment ZFLEET_KVMAGENT_PORT\)"):
        load(AgentConfig, "kvmagent", [], env={"ZFLEET_KVMAGENT_PORT": "70000"})
    conf = tmp_path / "bad.toml"
    conf.write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError, match=r"no_such_setting \(config file"):
        load(AgentConfig, "kvmagent", ["--config", str(conf)], env={})
    conf.write_text("port = [")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(AgentConfig, "kvmagent", ["--config", str(conf)], env={})


def test_bool_flag(tmp_path):
    assert load(AgentConfig, "x", ["--foreground"], env={}).foreground is True
