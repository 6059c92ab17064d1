"""The library's error types that several layers raise: a leaf, importing nothing of the
package, so that the checkpoint driver (``runs``) and the config can both raise them
without importing each other."""


class ConfigError(ValueError):
    """A bad configuration value, data set, checkpoint or output folder; the message is one
    line."""
