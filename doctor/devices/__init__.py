"""The audio device shell: everything that touches the machine's sound hardware or sound
server, kept out of the pure cores in `doctor/audio/`.

- `portaudio`: enumerate, pick, open, record and play devices through PortAudio (device I/O;
  the selection rule is pure).
- `errors`: what a PortAudio failure means for the user (pure).
- `soundserver`: what PulseAudio/PipeWire really uses behind ALSA's `pulse` device
  (runs `pactl` queries; the parser is pure).
- `loopback`: whether an input's name says it is a copy of an output (pure).
- `chatter`: points file descriptor 2 at a pipe around library calls, so the C audio
  libraries' messages are counted into evidence instead of reaching the terminal.
- `serverprobe`: whether a PulseAudio/PipeWire server answers (`pactl info` under a
  deadline) before PortAudio loads; a frozen one hung enumeration for 60 s.
- `teardown`: audio stack calls under a deadline, and PortAudio's atexit teardown bounded,
  so a server that freezes mid-stream never hangs the CLI after its report.
- `choose`: `--input-device`/`--output-device` checked before the checks run (a typo is a
  usage error) and sound-server source/sink names routed through ALSA's pulse device.
"""
