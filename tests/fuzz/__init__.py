"""Property-based fuzz tests: hostile input of every kind, refused cleanly or handled."""
