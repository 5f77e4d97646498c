"""Shop platforms (Shopify, WooCommerce): their webhook payloads mapped to ``OrderInput``.

Pure functions over parsed JSON; signature checks are here too, the HTTP handling is in
``orders.endpoints``.
"""
