"""Ingestion: the Segment-compatible HTTP tracking API, its durable inbox and the event writer."""
