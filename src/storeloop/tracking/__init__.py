"""Tracked links (/r/{code}) with click recording and bot flags, and the storefront script (/t.js).

The request path is plain ASGI (``endpoints.TrackingRoutes``); clicks are written in batches by
``clicks.ClickWriter``; links come from a short in-process cache (``repository.LinkCache``).
"""
