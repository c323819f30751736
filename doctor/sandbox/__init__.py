"""A local imitation of the Voice Agent API (`agent-doctor sandbox`)."""
