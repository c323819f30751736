"""Echo: does a capture contain what was played? Delay, drift, return loss (pure)."""
