"""`agent-doctor watch`: a relay between the user's app and the service that diagnoses the app.

The relay (`relay`) forwards every frame unchanged and hands a copy to a worker process
(`worker`) through a bounded, non-blocking pipe (`feed`); the worker writes the capture and
runs the relay-only analysis (`observe`, a pure core) off the relay's event loop.
"""
