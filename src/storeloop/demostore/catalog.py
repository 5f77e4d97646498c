"""The demo store's catalog: a few hundred clothing products with sizes, colours and prices."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

# category: (code, how many products, price range, sizes, name stems)
CATEGORIES: dict[str, tuple[str, int, tuple[int, int], tuple[str, ...], tuple[str, ...]]] = {
    "Dresses": (
        "DR",
        42,
        (49, 169),
        ("XS", "S", "M", "L", "XL"),
        (
            "Linen midi dress",
            "Wrap dress",
            "Slip dress",
            "Shirt dress",
            "Smock dress",
            "Knitted dress",
            "Tiered maxi dress",
        ),
    ),
    "Tops": (
        "TP",
        56,
        (19, 59),
        ("XS", "S", "M", "L", "XL"),
        (
            "Organic tee",
            "Ribbed tank",
            "Poplin shirt",
            "Boxy tee",
            "Silk blouse",
            "Crop top",
            "Long-sleeve tee",
        ),
    ),
    "Jeans": (
        "JN",
        34,
        (69, 129),
        ("24", "26", "28", "30", "32", "34"),
        (
            "Straight jeans",
            "Wide-leg jeans",
            "Slim jeans",
            "Mom jeans",
            "Bootcut jeans",
        ),
    ),
    "Knitwear": (
        "KN",
        38,
        (59, 149),
        ("XS", "S", "M", "L", "XL"),
        (
            "Merino jumper",
            "Cashmere crew",
            "Cable cardigan",
            "Mohair vest",
            "Roll-neck",
        ),
    ),
    "Outerwear": (
        "OW",
        26,
        (119, 299),
        ("XS", "S", "M", "L", "XL"),
        (
            "Wool coat",
            "Trench coat",
            "Denim jacket",
            "Puffer jacket",
            "Quilted liner",
        ),
    ),
    "Shoes": (
        "SH",
        30,
        (79, 189),
        ("36", "37", "38", "39", "40", "41", "42"),
        (
            "Leather loafer",
            "Canvas sneaker",
            "Chelsea boot",
            "Strappy sandal",
            "Ballet flat",
        ),
    ),
    "Accessories": (
        "AC",
        44,
        (15, 89),
        ("One size",),
        (
            "Leather belt",
            "Silk scarf",
            "Tote bag",
            "Beanie",
            "Hair clip set",
            "Crossbody bag",
            "Cotton socks 3-pack",
        ),
    ),
}
COLOURS = (
    ("Black", "BLK"),
    ("Ecru", "ECR"),
    ("Navy", "NVY"),
    ("Sage", "SGE"),
    ("Camel", "CML"),
    ("Rust", "RST"),
    ("Denim blue", "DNM"),
    ("Chocolate", "CHC"),
    ("Lilac", "LLC"),
)


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category: str
    colour: str
    price: Decimal
    sizes: tuple[str, ...]
    colour_code: str
    # How strongly shoppers are drawn to it (a few bestsellers, a long tail).
    popularity: float

    def sku(self, size: str) -> str:
        return f"{self.product_id}-{self.colour_code}-{size.replace(' ', '')}"


def build_catalog(rng: random.Random) -> list[Product]:
    products: list[Product] = []
    for category, (code, count, (low, high), sizes, stems) in CATEGORIES.items():
        for number in range(1, count + 1):
            colour, colour_code = rng.choice(COLOURS)
            stem = stems[(number - 1) % len(stems)]
            # Prices end in .00, .50 or .90 like a real price list.
            price = Decimal(rng.randint(low, high)) + rng.choice(
                (Decimal("0.00"), Decimal("0.50"), Decimal("0.90"))
            )
            products.append(
                Product(
                    product_id=f"{code}{number:03d}",
                    name=f"{stem}, {colour.lower()}",
                    category=category,
                    colour=colour,
                    price=price,
                    sizes=sizes,
                    colour_code=colour_code,
                    popularity=rng.paretovariate(1.6),
                )
            )
    return products
