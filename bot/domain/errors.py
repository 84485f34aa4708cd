"""The small error hierarchy every Offhours module raises from."""

from __future__ import annotations


class OffhoursError(Exception):
    """Base class: a failure with a message meant for a person to read."""


class ConfigError(OffhoursError):
    """config.yaml or the environment is wrong; the message names the key and what was expected."""


class HoursError(OffhoursError):
    """Hours, days off, time zone or duration text could not be understood; the message shows a correct example."""


class TemplateError(OffhoursError):
    """A boundary-message template uses something other than the known {placeholders}."""
