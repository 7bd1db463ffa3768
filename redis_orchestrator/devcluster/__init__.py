"""Throwaway local deployments of real server processes."""
