"""Signal levels: a short capture's statistics, and streaming statistics for big inputs."""
