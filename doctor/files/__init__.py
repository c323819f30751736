"""Reading audio from paths and stdin for the pure cores (shells, bounded memory)."""
