"""Orders from every source (events, Shopify, WooCommerce, CSV) as one model, with refunds."""
