"""Influencers, campaigns, tracked links, discount codes, social posts and store settings."""
