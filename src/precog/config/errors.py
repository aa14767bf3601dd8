class ConfigError(ValueError):
    """Invalid configuration. The message names the file, the key, the value and what is allowed."""
