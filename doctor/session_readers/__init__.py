"""Thin readers of session inputs: files in, `doctor.session` events out, streaming.

Each reader says which shape it found, yields events in file order, and reports every
problem (a truncated file, a line that is not JSON, a file that is not a session log) as
one line through a `note` callback; nothing it reads ends in a traceback.
"""
