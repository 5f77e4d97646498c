"""The demo store: a believable clothing shop, generated from a seed and fed through the real
paths (tracking API, tracked-link redirects, shop webhooks, management API)."""
