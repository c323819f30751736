"""`agent-doctor browser`: the checks a Python process cannot make, run in the user's browser.

`server` serves the page (package data in `page/`) on 127.0.0.1 and takes its results back;
`verdicts` (pure) turns the page's facts into `browser-*` results; `echo` hands the page's
recordings to the existing echo core; `refine` repeats a failed handshake from Python;
`command` is the CLI shell.
"""
