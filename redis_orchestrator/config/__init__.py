"""The config file parsed once at the edge into frozen settings."""
