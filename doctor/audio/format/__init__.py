"""What goes in `input.audio`: the layers around the samples (base64, JSON messages,
containers), the sample encodings, and validate-audio's verdict over them (pure)."""
