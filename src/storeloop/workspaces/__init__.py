"""Workspaces (stores), staff users and roles, API keys, and each workspace's encryption keys."""
