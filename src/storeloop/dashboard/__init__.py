"""The store's web dashboard: server-rendered pages over the domain services."""

from storeloop.dashboard.pages import install_dashboard

__all__ = ["install_dashboard"]
