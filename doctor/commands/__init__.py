"""Sub-commands that live outside cli.py, loaded lazily."""
