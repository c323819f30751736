"""Report building and rendering: pure functions from results to text and JSON."""
