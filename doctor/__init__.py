"""agent-doctor: diagnose AssemblyAI Voice Agent API problems on the user's machine."""

__version__ = "0.1.0"
