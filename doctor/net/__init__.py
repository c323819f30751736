"""Network: the Voice Agent API client and the staged reachability probe."""
