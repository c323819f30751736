"""The sound server's view of a stream's devices, parsed from pactl's JSON (pure)."""

from __future__ import annotations

from typing import Any

from doctor.devices.soundserver import parse, routed_through_server

INFO = {
    "server_name": "PulseAudio (on PipeWire 1.0.5)",
    "server_version": "15.0.0",
    "default_sink_name": "alsa_output.pci-0000_00_1f.3.analog-stereo",
    "default_source_name": "alsa_input.pci-0000_00_1f.3.analog-stereo",
}


def _src(name: str, spec: str, **props: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": props.pop("description", name),
        "sample_specification": spec,
        "monitor_source": props.pop("monitor_of", ""),
        "properties": props,
    }


SINKS = [
    _src(
        "alsa_output.pci-0000_00_1f.3.analog-stereo",
        "s32le 2ch 48000Hz",
        description="Built-in Audio",
    ),
    _src(
        "bluez_output.AA_BB.1",
        "s16le 1ch 16000Hz",
        description="WH-1000XM4",
        **{"device.bus": "bluetooth", "api.bluez5.profile": "headset-head-unit"},
    ),
]
SOURCES = [
    _src(
        "alsa_input.pci-0000_00_1f.3.analog-stereo", "s32le 2ch 48000Hz", description="Built-in Mic"
    ),
    _src(
        "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
        "s32le 2ch 48000Hz",
        description="Monitor of Built-in Audio",
        monitor_of="alsa_output.pci-0000_00_1f.3.analog-stereo",
        **{"device.class": "monitor"},
    ),
    _src(
        "looped",
        "s16le 1ch 48000Hz",
        **{
            "device.class": "filter",
            "device.master_device": "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
        },
    ),
    _src(
        "bluez_input.AA_BB.0",
        "s16le 1ch 16000Hz",
        description="WH-1000XM4",
        **{"device.bus": "bluetooth", "bluetooth.protocol": "headset_head_unit"},
    ),
]


def test_defaults_and_their_rates() -> None:
    facts = parse(INFO, SOURCES, SINKS, env={})
    assert facts.source is not None and facts.sink is not None
    assert (facts.source.description, facts.source.rate_hz, facts.source.channels) == (
        "Built-in Mic",
        48000,
        2,
    )
    assert facts.source.monitor_of is None and not facts.source.hands_free
    assert facts.sink.rate_hz == 48000 and facts.sink.monitor_of is None
    assert facts.server.startswith("PulseAudio (on PipeWire")


def test_the_clients_environment_overrides_the_defaults() -> None:
    facts = parse(
        INFO,
        SOURCES,
        SINKS,
        env={"PULSE_SOURCE": "bluez_input.AA_BB.0", "PULSE_SINK": "bluez_output.AA_BB.1"},
    )
    assert facts.source is not None and facts.source.hands_free
    assert facts.source.bluetooth_profile == "headset_head_unit"
    assert facts.sink is not None and facts.sink.hands_free and facts.sink.rate_hz == 16000


def test_a_monitor_and_a_filter_over_a_monitor_name_the_output_they_copy() -> None:
    mon = parse(INFO, SOURCES, SINKS, env={"PULSE_SOURCE": SOURCES[1]["name"]}).source
    assert mon is not None and mon.monitor_of == "Built-in Audio"
    looped = parse(INFO, SOURCES, SINKS, env={"PULSE_SOURCE": "looped"}).source
    assert looped is not None and looped.monitor_of == "Built-in Audio"


def test_unknown_names_and_odd_json_give_no_device() -> None:
    facts = parse({}, [{"name": "x"}], [], env={"PULSE_SOURCE": "nope"})
    assert facts.source is None and facts.sink is None
    odd = parse(
        INFO, [{"name": INFO["default_source_name"], "sample_specification": "?"}], [], env={}
    )
    assert odd.source is not None and odd.source.rate_hz is None


def test_only_alsa_routes_into_the_server() -> None:
    assert routed_through_server("pulse", "ALSA") and routed_through_server("default", "ALSA")
    assert not routed_through_server("system", "JACK Audio Connection Kit")
    assert not routed_through_server("HDA Intel PCH: ALC295 Analog (hw:0,0)", "ALSA")
