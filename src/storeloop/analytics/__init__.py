"""Dashboard numbers: day rollups recomputed from the raw rows, and the queries over them."""
