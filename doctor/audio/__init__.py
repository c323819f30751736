"""Pure audio analysis cores (no devices, no files): PCM inspection, rate, echo, levels."""
