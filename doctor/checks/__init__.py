"""Built-in checks, imported in registry order (a check's needs come before it).

Check modules stay light at import: heavy libraries are imported inside the checks.
"""
# ruff: noqa: I001  (the order of these imports is the registry order)

from doctor.checks import environment as environment
from doctor.checks import network as network
from doctor.checks import token as token
from doctor.checks import resume as resume
from doctor.checks import audio_devices as audio_devices
from doctor.checks import echo as echo
from doctor.checks import audio_format as audio_format
