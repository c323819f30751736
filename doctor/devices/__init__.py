"""The PortAudio shell: enumerate, pick, open, record and play devices, and what a PortAudio
failure means (the error classification is pure; the rest does device I/O)."""
