"""Device selection by default, index or name part: pure, no PortAudio."""

from __future__ import annotations

import pytest

from doctor.devices.portaudio import DeviceError, DeviceInfo, select_device


def dev(index: int, name: str, ins: int = 2, outs: int = 2, rate: float = 48000.0) -> DeviceInfo:
    return DeviceInfo(index, name, "ALSA", ins, outs, rate)


DEVICES = [
    dev(0, "HDA Intel PCH: ALC295 Analog (hw:0,0)"),
    dev(1, "HDA Intel PCH: HDMI 0 (hw:0,3)", ins=0),
    dev(2, "USB Headset Mic", outs=0, rate=16000.0),
    dev(3, "pulse", 32, 32, 44100.0),
    dev(4, "default", 32, 32, 44100.0),
    dev(5, "system", 2, 2, 48000.0),
    dev(6, "system monitor", 2, 0),
]


def test_default_is_the_given_index_and_marked() -> None:
    got = select_device(DEVICES, None, "input", 4)
    assert (got.index, got.is_default) == (4, True)
    assert select_device(DEVICES, "  ", "output", 3).index == 3


def test_no_devices_at_all() -> None:
    with pytest.raises(DeviceError) as err:
        select_device([], None, "input", -1)
    assert err.value.cause == "no_input_device"
    assert err.value.evidence["input_devices"] == 0


def test_only_outputs_means_no_input_device() -> None:
    with pytest.raises(DeviceError) as err:
        select_device([dev(0, "hdmi", ins=0)], None, "input", -1)
    assert err.value.cause == "no_input_device"


def test_devices_but_no_default_lists_them() -> None:
    with pytest.raises(DeviceError) as err:
        select_device(DEVICES, None, "output", -1)
    assert err.value.cause == "no_output_device"
    assert "--output-device" in err.value.message
    assert any("pulse" in line for line in err.value.evidence["available"])


def test_by_index() -> None:
    got = select_device(DEVICES, "2", "input", 4)
    assert got.name == "USB Headset Mic" and not got.is_default


def test_index_of_a_device_without_that_side() -> None:
    with pytest.raises(DeviceError) as err:
        select_device(DEVICES, "1", "input", 4)
    assert err.value.cause == "no_input_device"
    assert "has no inputs" in err.value.message


def test_unknown_index() -> None:
    with pytest.raises(DeviceError) as err:
        select_device(DEVICES, "99", "output", 4)
    assert err.value.cause == "no_output_device"


def test_name_part_is_case_insensitive() -> None:
    assert select_device(DEVICES, "headset", "input", 4).index == 2
    assert select_device(DEVICES, "ALC295", "output", 4).index == 0


def test_exact_name_beats_longer_names_containing_it() -> None:
    assert select_device(DEVICES, "system", "input", 4).index == 5
    assert select_device(DEVICES, "SYSTEM", "output", 4).index == 5


def test_name_part_only_counts_devices_of_that_kind() -> None:
    # "HDMI" names an output-only device; as an input it matches nothing.
    with pytest.raises(DeviceError) as err:
        select_device(DEVICES, "HDMI", "input", 4)
    assert err.value.cause == "no_input_device"
    assert select_device(DEVICES, "HDMI", "output", 4).index == 1


def test_ambiguous_name_part_asks_for_more() -> None:
    with pytest.raises(DeviceError) as err:
        select_device(DEVICES, "hda intel", "output", 4)
    assert "2 output devices match" in err.value.message
    assert len(err.value.evidence["matches"]) == 2


def test_no_match() -> None:
    with pytest.raises(DeviceError) as err:
        select_device(DEVICES, "blue yeti", "input", 4)
    assert err.value.evidence["requested"] == "blue yeti"
    assert "no input device name contains" in err.value.message


def test_evidence_has_units() -> None:
    ev = DEVICES[2].evidence("input_")
    assert ev["input_native_rate_hz"] == 16000.0 and ev["input_device"] == "USB Headset Mic"
