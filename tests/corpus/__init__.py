"""The bad-input corpus: malformed tables, configs, command lines and tampered models, as data."""
