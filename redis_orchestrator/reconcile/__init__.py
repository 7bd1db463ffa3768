"""Bringing one node to the catalog."""
