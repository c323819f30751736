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
"""
