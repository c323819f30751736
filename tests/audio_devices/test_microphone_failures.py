"""How an open failure becomes the check's result: cause, fix entry and evidence.

The permission and busy cases cannot be produced for real as root on a machine without
sound hardware (root bypasses socket permissions; nothing else holds a device), so the
DeviceError is built by hand here; everything downstream of it is the real code.
"""

from __future__ import annotations

import pytest

from doctor.checks.audio_devices import _device_failure
from doctor.devices.portaudio import DeviceError
from doctor.result import Status


def test_permission_denied_points_to_privacy_settings_and_the_audio_group() -> None:
    err = DeviceError("permission_denied", "input device 'mic': access refused", {"device": "mic"})
    result = _device_failure(err, "input")
    assert (result.status, result.cause) == (Status.FAIL, "permission_denied")
    assert result.fix is not None and result.fix.guide == "mic_permission"
    steps = " ".join(result.fix.steps)
    assert "Privacy & Security" in steps and "audio" in steps
    assert "dev_snd_exists" in result.evidence  # Linux facts ride along


def test_permission_denied_on_an_output_is_not_a_microphone_fix() -> None:
    result = _device_failure(DeviceError("permission_denied", "x", {}), "output")
    assert result.fix is not None and result.fix.guide == "audio_device"


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        ("device_busy", "device_busy"),
        ("open_failed", "open_failed"),
        ("something_new", "open_failed"),
    ],
)
def test_other_open_failures(cause: str, expected: str) -> None:
    result = _device_failure(DeviceError(cause, "boom", {"device": "mic"}), "input")
    assert (result.status, result.cause) == (Status.FAIL, expected)
    assert result.fix is not None and result.fix.guide == "audio_device"
    assert any("boom" in s for s in result.fix.steps)


def test_portaudio_missing_gives_the_install_command() -> None:
    result = _device_failure(DeviceError("portaudio_missing", "no lib", {}), "input")
    assert result.cause == "portaudio_missing"
    assert result.fix is not None and result.fix.commands


def test_no_device_from_portaudio_becomes_the_kind_specific_cause() -> None:
    result = _device_failure(DeviceError("no_device", "Error querying device -1", {}), "output")
    assert result.cause == "no_output_device"
