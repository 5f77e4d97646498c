"""Touchpoints, channel grouping and attribution of orders to marketing."""
