"""The agent: ``certsmith agent --config agent.toml`` deploys its bindings on a host the server cannot reach."""

from .config import AgentConfig, ConfigError, load_config
from .loop import Agent

__all__ = ["Agent", "AgentConfig", "ConfigError", "load_config"]
