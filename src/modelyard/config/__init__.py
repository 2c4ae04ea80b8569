"""The typed config file, secret references and errors that name the config path."""

from modelyard.config.errors import ConfigError, ConfigIssue
from modelyard.config.loader import config_path_from_env, data_dir, load_settings
from modelyard.config.schema import Settings

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "Settings",
    "config_path_from_env",
    "data_dir",
    "load_settings",
]
