"""Talking RESP to one node."""
