"""Pure audio cores on bytes and sample arrays: no devices, no files, no sockets.

`format/` validates what goes in `input.audio` (base64, JSON, containers, encodings),
`rate/` estimates the true sample rate of speech, `echo/` measures a playback-to-capture
loop, `levels/` measures signal levels. The shells that feed them live in `doctor.devices`
(PortAudio) and `doctor.files` (paths and stdin).
"""
