"""Shared helpers with no domain knowledge."""
