"""The true sample rate of speech, estimated from the signal itself (pure)."""
