"""Inventory's demo builder, part one: the demo organisations, their stores and rooms, a
realistic catalogue (the classification mix of docs/domain.md, GTINs with check digits,
supplier codes), a member for every role and device tokens. Built through the services."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model

from inventory.catalog.barcodes import gtin_check_digit
from inventory.models import (
    ClassificationMapping,
    Location,
    LocationKind,
    Organization,
    Role,
    Store,
)
from inventory.tenancy.scope import tenant_scope
from inventory.tenancy.services import (
    location_create,
    membership_create,
    org_create,
    store_create,
)
from inventory.tenancy.tokens import api_token_create

DEMO_PASSWORD = "demo-pass-2026"


PLATFORM_ADMIN_EMAIL = "root@platform.example"


# (code, name, kind, sellable, sort order) for rooms beyond store_create's SF and BR.
VAULT = ("VLT", "Vault", LocationKind.VAULT, False, 30)


QUARANTINE = ("QRN", "Quarantine", LocationKind.QUARANTINE, False, 40)


RECEIVING = ("RCV", "Receiving", LocationKind.RECEIVING, False, 50)


COOLER = ("COOL", "Cooler", LocationKind.OTHER, True, 15)


PHARMACY = ("RX", "Pharmacy", LocationKind.OTHER, False, 30)


# (e-mail local part, role, first name, last name, store codes it is limited to)
CANNABIS_PEOPLE = (
    ("admin", Role.ADMIN, "Avery", "Tremblay", ()),
    ("manager", Role.MANAGER, "Morgan", "Singh", ()),
    ("operator", Role.OPERATOR, "Riley", "Nguyen", ()),
    ("operator.ottawa", Role.OPERATOR, "Jordan", "Gagnon", ("NL-OTT",)),
    ("viewer", Role.VIEWER, "Casey", "MacDonald", ()),
    # the POS integration acts as its own member, so its writes are not booked to a person
    ("pos", Role.OPERATOR, "Cova", "Integration", ()),
)


GROCERY_PEOPLE = (
    ("admin", Role.ADMIN, "Priya", "Sandhu", ()),
    ("manager", Role.MANAGER, "Daniel", "Wong", ()),
    ("operator", Role.OPERATOR, "Sofia", "Martinez", ()),
    ("viewer", Role.VIEWER, "Liam", "O'Connor", ()),
    ("pos", Role.OPERATOR, "POS", "Integration", ()),
)


# (device name, e-mail local part of the member the token belongs to)
DEVICES = (("Tablet 1", "operator"), ("Cova POS", "pos"))


#: Grocery/pharmacy classifications: classification -> (category, subcategory).
GROCERY_CLASSIFICATIONS: dict[str, tuple[str, str]] = {
    "Milk & Cream": ("Dairy", "Milk & Cream"),
    "Yogurt": ("Dairy", "Yogurt"),
    "Cheese": ("Dairy", "Cheese"),
    "Butter & Eggs": ("Dairy", "Butter & Eggs"),
    "Bread": ("Bakery", "Bread"),
    "Baked Goods": ("Bakery", "Baked Goods"),
    "Fruit": ("Produce", "Fruit"),
    "Vegetables": ("Produce", "Vegetables"),
    "Pain Relief": ("OTC Medicine", "Pain Relief"),
    "Cold & Flu": ("OTC Medicine", "Cold & Flu"),
    "Allergy": ("OTC Medicine", "Allergy"),
    "Digestive Health": ("OTC Medicine", "Digestive Health"),
    "Soft Drinks": ("Beverages", "Soft Drinks"),
    "Juice": ("Beverages", "Juice"),
    "Water": ("Beverages", "Water"),
    "Coffee & Tea": ("Beverages", "Coffee & Tea"),
}


@dataclass(frozen=True)
class Line:
    """One kind of product: its classification and how its names, prices and stock look.

    ``pattern`` uses ``{brand}``, ``{variety}`` (one of ``varieties``) and ``{size}``; each size
    carries its own regular-price range in whole dollars.
    """

    classification: str
    pattern: str
    sizes: tuple[tuple[str, int, int], ...]
    varieties: tuple[str, ...] = ()
    unit: str = "each"
    tracks_expiry: bool = False
    reorder: tuple[int, int] = (6, 12)  # reorder point, reorder quantity
    weight: int = 10  # how often the line is picked within its group


@dataclass(frozen=True)
class Group:
    """A slice of the catalog with its share of the SKU count (the mix in docs/domain.md)."""

    key: str  # also the SKU prefix in the grocery catalog
    share: int
    brands: tuple[str, ...]
    lines: tuple[Line, ...]


CANNABIS_SKUS = 220


GROCERY_SKUS = 80


FLOWER_BRANDS = (
    "Boreal Bud Co.",
    "Tidewater Craft",
    "Kettle Lake",
    "Granite Peak",
    "Old Pine Growers",
    "Foxglove",
    "Hinterland",
    "Saltbox",
    "Cedarline",
    "Prairie Static",
    "Lumen",
    "Ninth Wave",
)


EDIBLE_BRANDS = ("Sugar Shack", "Little Maple", "Gummy Loon", "Cocoa North", "Wildberry Kitchen")


BEVERAGE_BRANDS = ("Fizz Lake", "Northern Tonic", "Pine Cone Pop", "Cold Front")


ACCESSORY_BRANDS = ("Ember & Ash", "Kindle Glass", "Drift Supply", "Spark Goods")


WELLNESS_BRANDS = ("Calm Current", "Evergreen Wellness", "Tundra Botanicals", "Balance Lab")


SEED_BRANDS = ("True North Genetics", "Harbour Seed Co.")


STRAINS = (
    "Wappa",
    "Pink Kush",
    "Blue Dream",
    "Wedding Cake",
    "Gelato",
    "GMO Cookies",
    "Ultra Sour",
    "Jack Haze",
    "Sour Diesel",
    "Northern Lights",
    "MAC1",
    "Gorilla Glue",
    "Banana Kush",
    "Tangie",
    "Durban Poison",
    "Purple Punch",
    "Cherry Pie",
    "Lemon Haze",
    "Chemdawg",
    "OG Kush",
    "Death Bubba",
    "Animal Face",
    "Ice Cream Cake",
    "Runtz",
    "Zkittlez",
    "Strawberry Cough",
    "Bubba Kush",
    "Super Lemon Haze",
    "Black Cherry Punch",
    "Grape Ape",
    "Sunset Sherbet",
    "Space Cake",
    "Platinum Kush",
    "Lemon Cherry Gelato",
    "Pineapple Express",
    "Jean Guy",
)


GUMMY_FLAVOURS = (
    "Sour Watermelon",
    "Blue Raspberry",
    "Mango Chili",
    "Black Cherry",
    "Peach",
    "Pink Lemonade",
    "Tropical Punch",
    "Wild Berry",
    "Grape",
    "Green Apple",
)


CHOCOLATES = ("Milk", "Dark", "Salted Caramel", "Mint Dark", "Cookies & Cream", "Espresso")


DRINK_FLAVOURS = (
    "Lemon Lime",
    "Grapefruit",
    "Black Cherry",
    "Iced Tea",
    "Blood Orange",
    "Ginger Ale",
    "Cranberry Spritz",
    "Mango",
    "Raspberry Lemonade",
)


CANNABIS_CATALOG = (
    Group(
        "flower",
        25,
        FLOWER_BRANDS,
        (
            Line(
                "Dried Flower",
                "{brand} {variety} {size}",
                (("1g", 8, 13), ("3.5g", 24, 45), ("3.5g", 24, 45), ("7g", 42, 60)),
                STRAINS,
                reorder=(8, 24),
                weight=20,
            ),
            Line(
                "Milled Flower",
                "{brand} {variety} Milled {size}",
                (("7g", 32, 50), ("15g", 45, 60)),
                STRAINS,
                reorder=(4, 12),
                weight=3,
            ),
            Line(
                "Dried Flower",
                "{brand} {variety} Bulk Flower {size}",
                (("(per g)", 8, 10),),
                STRAINS,
                unit="g",
                reorder=(56, 224),
                weight=2,
            ),
        ),
    ),
    Group(
        "pre-rolls",
        20,
        FLOWER_BRANDS,
        (
            Line(
                "Pre-Rolls",
                "{brand} {variety} {size}",
                (
                    ("1g Pre-Roll", 8, 13),
                    ("0.5g Pre-Roll x3", 13, 20),
                    ("1g Pre-Roll x3", 20, 30),
                    ("0.35g Pre-Roll x10", 28, 42),
                    ("0.5g Pre-Roll x10", 35, 50),
                ),
                STRAINS,
                reorder=(10, 30),
                weight=8,
            ),
            Line(
                "Infused Pre-Rolls",
                "{brand} {variety} {size}",
                (("1g Infused Pre-Roll", 14, 20), ("0.5g Infused Pre-Roll x3", 24, 35)),
                STRAINS,
                reorder=(6, 18),
                weight=2,
            ),
        ),
    ),
    Group(
        "vapes",
        15,
        FLOWER_BRANDS,
        (
            Line(
                "510 Thread",
                "{brand} {variety} 510 Cartridge {size}",
                (("0.5g", 25, 35), ("1g", 40, 55)),
                STRAINS,
                reorder=(6, 18),
                weight=4,
            ),
            Line(
                "Pods",
                "{brand} {variety} Pod {size}",
                (("0.5g", 28, 38), ("1g", 42, 58)),
                STRAINS,
                reorder=(6, 18),
                weight=3,
            ),
            Line(
                "Disposable Vapes",
                "{brand} {variety} All-in-One {size}",
                (("0.3g", 20, 28), ("1g", 45, 60)),
                STRAINS,
                reorder=(6, 18),
                weight=2,
            ),
            Line(
                "Resin Vapes",
                "{brand} {variety} Live Resin Cartridge {size}",
                (("0.5g", 30, 40), ("1g", 45, 60)),
                STRAINS,
                reorder=(4, 12),
                weight=2,
            ),
        ),
    ),
    Group(
        "edibles",
        12,
        EDIBLE_BRANDS,
        (
            Line(
                "Distillate Gummies/Chews",
                "{brand} {variety} Gummies {size}",
                (("5 x 2mg", 8, 12), ("10 x 1mg", 9, 13), ("1:1 CBD:THC 5 x 2mg", 10, 14)),
                GUMMY_FLAVOURS,
                tracks_expiry=True,
                reorder=(12, 36),
                weight=6,
            ),
            Line(
                "Soft Chews",
                "{brand} {variety} Soft Chews {size}",
                (("4 x 2.5mg", 8, 11), ("2 x 5mg", 8, 11)),
                GUMMY_FLAVOURS,
                tracks_expiry=True,
                reorder=(8, 24),
                weight=2,
            ),
            Line(
                "Chocolate",
                "{brand} {variety} Chocolate {size}",
                (("Bar 10mg", 8, 12), ("Squares 4 x 2.5mg", 8, 12)),
                CHOCOLATES,
                tracks_expiry=True,
                reorder=(6, 18),
                weight=2,
            ),
        ),
    ),
    Group(
        "extracts",
        8,
        FLOWER_BRANDS,
        (
            Line(
                "Extracts - Inhaled",
                "{brand} {variety} {size}",
                (
                    ("Live Resin 1g", 35, 55),
                    ("Shatter 1g", 25, 40),
                    ("Hash 2g", 25, 40),
                    ("Live Rosin 1g", 45, 60),
                    ("THCa Diamonds 1g", 40, 60),
                    ("Bubble Hash 1g", 25, 38),
                    ("Kief 2g", 18, 28),
                ),
                STRAINS,
                reorder=(3, 10),
            ),
        ),
    ),
    Group(
        "beverages",
        6,
        BEVERAGE_BRANDS,
        (
            Line(
                "Beverages",
                "{brand} {variety} {size}",
                (
                    ("Sparkling 355ml 10mg", 8, 12),
                    ("Sparkling 355ml 5mg", 8, 11),
                    ("Soda 4 x 355ml 2.5mg", 18, 28),
                    ("Shot 100ml 10mg", 9, 13),
                ),
                DRINK_FLAVOURS,
                tracks_expiry=True,
                reorder=(12, 24),
            ),
        ),
    ),
    Group(
        "accessories",
        6,
        ACCESSORY_BRANDS,
        (
            Line(
                "Accessories",
                "{brand} {size}",
                (
                    ("4-Piece Grinder 55mm", 18, 40),
                    ("Glass Hand Pipe", 12, 35),
                    ("King Size Rolling Papers", 8, 10),
                    ("510 Battery 650mAh", 15, 30),
                    ("Rolling Tray Medium", 12, 25),
                    ("Smell-Proof Stash Jar", 15, 30),
                    ("Hemp Wick 10ft", 8, 10),
                    ("Silicone Water Pipe 8in", 30, 60),
                    ("Pre-Roll Cones x6", 8, 12),
                ),
                reorder=(4, 12),
            ),
        ),
    ),
    Group(
        "capsules-oils",
        4,
        WELLNESS_BRANDS,
        (
            Line(
                "Capsules",
                "{brand} {size}",
                (
                    ("THC 10mg Softgels x30", 35, 55),
                    ("CBD 25mg Softgels x30", 40, 60),
                    ("1:1 Balanced Softgels x15", 25, 40),
                ),
                tracks_expiry=True,
                reorder=(3, 8),
            ),
            Line(
                "Oils",
                "{brand} {size}",
                (
                    ("CBD 30 Oil 30ml", 30, 55),
                    ("THC 20 Oil 30ml", 30, 50),
                    ("Balanced 1:1 Oil 30ml", 35, 55),
                    ("Sublingual Spray 15ml", 25, 40),
                ),
                tracks_expiry=True,
                reorder=(3, 8),
            ),
        ),
    ),
    Group(
        "topicals",
        3,
        WELLNESS_BRANDS,
        (
            Line(
                "Topicals",
                "{brand} {size}",
                (
                    ("CBD Balm 30g", 25, 45),
                    ("Cooling Gel 100ml", 25, 40),
                    ("Body Lotion 120ml", 20, 40),
                    ("CBD Bath Bomb 100mg", 12, 18),
                    ("Roll-On 60ml", 25, 45),
                ),
                reorder=(2, 6),
            ),
        ),
    ),
    Group(
        "seeds",
        1,
        SEED_BRANDS,
        (
            Line(
                "Seeds",
                "{brand} {variety} Feminized Seeds {size}",
                (("x3", 30, 45), ("x5", 45, 60)),
                STRAINS,
                reorder=(2, 4),
            ),
        ),
    ),
)


GROCERY_CATALOG = (
    Group(
        "DAI",
        22,
        ("Valley Creamery", "Coastline Dairy", "Mountain Meadow", "Fresh Corner"),
        (
            Line(
                "Milk & Cream",
                "{brand} {variety} {size}",
                (("1L", 2, 4), ("2L", 4, 7)),
                (
                    "2% Milk",
                    "Homogenized Milk",
                    "Skim Milk",
                    "1% Milk",
                    "Lactose-Free 2% Milk",
                    "Chocolate Milk",
                    "Half & Half Cream",
                    "35% Whipping Cream",
                ),
                tracks_expiry=True,
                reorder=(12, 36),
                weight=4,
            ),
            Line(
                "Yogurt",
                "{brand} {variety} Yogurt {size}",
                (("650g", 4, 7), ("4 x 100g", 3, 5)),
                (
                    "Plain Greek",
                    "Vanilla Greek",
                    "Strawberry",
                    "Blueberry",
                    "Peach",
                    "Balkan Plain",
                ),
                tracks_expiry=True,
                reorder=(8, 24),
                weight=3,
            ),
            Line(
                "Cheese",
                "{brand} {variety} {size}",
                (("400g", 7, 13), ("200g", 4, 8)),
                (
                    "Old Cheddar",
                    "Medium Cheddar",
                    "Mozzarella",
                    "Havarti",
                    "Marble Cheddar",
                    "Swiss",
                    "Feta",
                    "Brie",
                ),
                tracks_expiry=True,
                reorder=(6, 18),
                weight=3,
            ),
            Line(
                "Butter & Eggs",
                "{brand} {size}",
                (
                    ("Salted Butter 454g", 5, 8),
                    ("Unsalted Butter 454g", 5, 8),
                    ("Large Eggs 12", 4, 7),
                    ("Free Run Large Eggs 12", 5, 8),
                    ("Omega-3 Eggs 12", 5, 8),
                ),
                tracks_expiry=True,
                reorder=(10, 30),
                weight=2,
            ),
        ),
    ),
    Group(
        "BAK",
        18,
        ("Harbour Bakehouse", "Golden Crust", "Main Street Bakery", "Fresh Corner"),
        (
            Line(
                "Bread",
                "{brand} {variety} Bread {size}",
                (("675g", 3, 6), ("570g", 3, 5)),
                (
                    "Whole Wheat",
                    "Sourdough",
                    "Multigrain",
                    "Rye",
                    "White",
                    "12-Grain",
                    "Oat & Honey",
                ),
                tracks_expiry=True,
                reorder=(6, 18),
                weight=5,
            ),
            Line(
                "Baked Goods",
                "{brand} {size}",
                (
                    ("Butter Croissants x6", 5, 8),
                    ("Blueberry Muffins x4", 5, 7),
                    ("Cinnamon Buns x6", 6, 9),
                    ("Plain Bagels x6", 4, 6),
                    ("Sesame Bagels x6", 4, 6),
                    ("Dinner Rolls x12", 3, 6),
                    ("Chocolate Chip Cookies x12", 4, 7),
                    ("Apple Pie 9in", 8, 14),
                ),
                tracks_expiry=True,
                reorder=(4, 12),
                weight=5,
            ),
        ),
    ),
    Group(
        "PRD",
        22,
        ("Fraser Valley Farms", "Okanagan Orchards", "Sunridge Growers", "Pacific Greens"),
        (
            Line(
                "Fruit",
                "{brand} {size}",
                (
                    ("Gala Apples 3 lb Bag", 4, 7),
                    ("Honeycrisp Apples 2 lb Bag", 5, 8),
                    ("Strawberries 454g", 4, 7),
                    ("Blueberries 510g", 5, 9),
                    ("Navel Oranges 4 lb Bag", 5, 8),
                    ("Red Seedless Grapes 907g", 5, 9),
                    ("Bananas Bunch", 2, 4),
                    ("Avocados Bag of 5", 5, 8),
                    ("Lemons 2 lb Bag", 3, 6),
                    ("Bartlett Pears 2 lb Bag", 4, 7),
                ),
                reorder=(10, 30),
            ),
            Line(
                "Vegetables",
                "{brand} {size}",
                (
                    ("Baby Spinach 312g", 4, 7),
                    ("Spring Mix 142g", 3, 6),
                    ("Carrots 2 lb Bag", 2, 4),
                    ("Yellow Onions 3 lb Bag", 3, 5),
                    ("Russet Potatoes 10 lb Bag", 5, 9),
                    ("Mini Cucumbers 397g", 3, 6),
                    ("Grape Tomatoes 283g", 3, 5),
                    ("Broccoli Crowns 500g", 3, 5),
                    ("Red Peppers 3 Pack", 4, 7),
                    ("Romaine Hearts 3 Pack", 4, 6),
                ),
                reorder=(10, 30),
            ),
        ),
    ),
    Group(
        "OTC",
        20,
        ("Apex Health", "Relievia", "ClearDay", "Nordica Labs"),
        (
            Line(
                "Pain Relief",
                "{brand} {size}",
                (
                    ("Ibuprofen 200mg Tablets x24", 5, 9),
                    ("Ibuprofen 200mg Liquid Gels x40", 10, 15),
                    ("Acetaminophen 500mg Caplets x100", 7, 12),
                    ("Acetaminophen 325mg Tablets x50", 5, 9),
                    ("Naproxen Sodium 220mg x24", 7, 12),
                    ("Low Dose ASA 81mg x120", 6, 10),
                ),
                tracks_expiry=True,
                reorder=(4, 12),
                weight=4,
            ),
            Line(
                "Cold & Flu",
                "{brand} {size}",
                (
                    ("Daytime Cold & Flu Caplets x12", 8, 13),
                    ("Nighttime Cold & Flu Syrup 230ml", 10, 16),
                    ("Honey Lemon Lozenges x20", 4, 7),
                    ("Saline Nasal Spray 30ml", 6, 10),
                    ("DM Cough Syrup 115ml", 9, 14),
                ),
                tracks_expiry=True,
                reorder=(4, 12),
                weight=3,
            ),
            Line(
                "Allergy",
                "{brand} {size}",
                (
                    ("Cetirizine 10mg Tablets x30", 12, 22),
                    ("Loratadine 10mg Tablets x20", 10, 18),
                    ("Allergy Eye Drops 15ml", 8, 14),
                    ("Fexofenadine 120mg Tablets x24", 14, 24),
                ),
                tracks_expiry=True,
                reorder=(3, 9),
                weight=2,
            ),
            Line(
                "Digestive Health",
                "{brand} {size}",
                (
                    ("Antacid Chewables x60", 6, 10),
                    ("Loperamide 2mg Caplets x12", 7, 12),
                    ("Fibre Supplement 283g", 12, 20),
                    ("Gas Relief Softgels x30", 7, 12),
                ),
                tracks_expiry=True,
                reorder=(3, 9),
                weight=2,
            ),
        ),
    ),
    Group(
        "BEV",
        18,
        ("Pacific Springs", "Orchard Gold", "Fizzbury", "Coastal Roasters"),
        (
            Line(
                "Soft Drinks",
                "{brand} {size}",
                (
                    ("Ginger Ale 12 x 355ml", 6, 10),
                    ("Cola 2L", 2, 4),
                    ("Lemon-Lime Soda 6 x 710ml", 5, 9),
                    ("Sparkling Water Lime 12 x 355ml", 6, 9),
                    ("Root Beer 12 x 355ml", 6, 10),
                ),
                reorder=(6, 24),
                weight=3,
            ),
            Line(
                "Juice",
                "{brand} {size}",
                (
                    ("Orange Juice 1.54L", 4, 7),
                    ("Apple Juice 1.89L", 3, 6),
                    ("Cranberry Cocktail 1.89L", 4, 6),
                    ("Grapefruit Juice 1.54L", 4, 7),
                    ("Mango Nectar 1L", 3, 5),
                ),
                tracks_expiry=True,
                reorder=(6, 18),
                weight=3,
            ),
            Line(
                "Water",
                "{brand} {size}",
                (
                    ("Spring Water 24 x 500ml", 4, 7),
                    ("Spring Water 1.5L", 1, 3),
                    ("Mineral Water 750ml", 2, 4),
                ),
                reorder=(12, 36),
                weight=2,
            ),
            Line(
                "Coffee & Tea",
                "{brand} {size}",
                (
                    ("Medium Roast Ground Coffee 340g", 8, 14),
                    ("Dark Roast Whole Bean 907g", 15, 25),
                    ("Orange Pekoe Tea 72 Bags", 5, 9),
                    ("Green Tea 20 Bags", 3, 6),
                    ("Cold Brew Coffee 1L", 5, 8),
                ),
                reorder=(4, 12),
                weight=2,
            ),
        ),
    ),
)


SUPPLIER_CODES_PER_ORG = 6  # products that also carry a supplier barcode


DEMO_ORGS = (
    {
        "slug": "northern-lights",
        "name": "Northern Lights Cannabis Co.",
        "time_zone": "America/Toronto",
        "settings": {
            "negative_stock_mode": "block",
            "discrepancy_enforcement": "warn",
            "escalation_threshold": Decimal("500.00"),
        },
        # category ("" = default): (units, percent, value at cost or None); built by
        # discrepancies.demo
        "variance_policies": {
            "": ("1", "2", None),
            "Flower": ("0", "1.5", "150"),
            "Pre-Rolls": ("0", "1", None),
        },
        "stores": (
            {
                "code": "NL-TOR",
                "name": "Queen West",
                "time_zone": "America/Toronto",
                "cova_location_id": "104",
                "rooms": (RECEIVING, VAULT, QUARANTINE),
            },
            {
                "code": "NL-OTT",
                "name": "ByWard Market",
                "time_zone": "America/Toronto",
                "cova_location_id": "117",
                "rooms": (VAULT, QUARANTINE),
            },
        ),
        "classifications": {},
        "catalog": (CANNABIS_CATALOG, CANNABIS_SKUS, "cannabis"),
        "people": CANNABIS_PEOPLE,
    },
    {
        "slug": "fresh-corner",
        "name": "Fresh Corner Grocery & Pharmacy",
        "time_zone": "America/Vancouver",
        "settings": {
            "negative_stock_mode": "warn",
            "discrepancy_enforcement": "record",
            "escalation_threshold": Decimal("250.00"),
        },
        "variance_policies": {
            "": ("1", "3", None),
            "Produce": ("2", "5", "40"),
            "OTC Medicine": ("0", "0", None),
        },
        "stores": (
            {
                "code": "FC-VAN",
                "name": "Main Street",
                "time_zone": "America/Vancouver",
                "cova_location_id": "",
                "rooms": (COOLER, PHARMACY),
            },
        ),
        "classifications": GROCERY_CLASSIFICATIONS,
        "catalog": (GROCERY_CATALOG, GROCERY_SKUS, "grocery"),
        "people": GROCERY_PEOPLE,
    },
)


DEMO_SLUGS = tuple(spec["slug"] for spec in DEMO_ORGS)


def demo_email(local: str, slug: str) -> str:
    return f"{local}@{slug}.example"


def split_counts(groups: tuple[Group, ...], total: int) -> list[int]:
    """SKUs per group: ``total`` split by the groups' shares (largest remainder)."""
    weight = sum(g.share for g in groups)
    exact = [total * g.share / weight for g in groups]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(groups)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def price_between(rng: random.Random, low: int, high: int) -> Decimal:
    """A shelf price in [low, high) dollars ending in .49 or .99."""
    cents = rng.randrange(low * 100, high * 100)
    return Decimal(cents // 100) + (Decimal("0.99") if cents % 100 >= 50 else Decimal("0.49"))


class GtinMaker:
    """Unique, valid GTINs: one GS1 company prefix per brand, item references counted up."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.prefixes: dict[str, str] = {}
        self.next_item: dict[str, int] = {}
        self.used: set[str] = set()

    def _prefix(self, brand: str) -> str:
        if brand not in self.prefixes:
            rng = self.rng
            if rng.random() < 0.6:  # UPC-A (GTIN-12): 6-digit prefix, 5-digit item reference
                prefix = rng.choice("0678") + f"{rng.randrange(10**5):05d}"
            else:  # EAN-13 from GS1 Canada (754/755): 8-digit prefix, 4-digit item reference
                prefix = rng.choice(("754", "755")) + f"{rng.randrange(10**5):05d}"
            self.prefixes[brand] = prefix
            self.next_item[brand] = rng.randrange(1, 500)
        return self.prefixes[brand]

    def make(self, brand: str) -> str:
        prefix = self._prefix(brand)
        item_digits = (11 if len(prefix) == 6 else 12) - len(prefix)
        while True:
            item = self.next_item[brand]
            self.next_item[brand] = item + self.rng.randrange(1, 4)
            payload = prefix + f"{item % 10**item_digits:0{item_digits}d}"
            code = payload + str(gtin_check_digit(payload))
            if code.zfill(14) not in self.used:
                self.used.add(code.zfill(14))
                return code


def cannabis_sku(rng: random.Random, used: set[str]) -> str:
    """Cova-style SKUs: Alberta wholesaler ``CNB-`` + 8 digits, or a plain 6-digit number."""
    while True:
        if rng.random() < 0.4:
            sku = f"CNB-{rng.randrange(10**7, 10**8):08d}"
        else:
            sku = str(rng.randrange(100000, 1000000))
        if sku not in used:
            used.add(sku)
            return sku


def grocery_sku(rng: random.Random, used: set[str], group: Group) -> str:
    while True:
        sku = f"{group.key}-{rng.randrange(1000, 10000)}"
        if sku not in used:
            used.add(sku)
            return sku


def supplier_code(rng: random.Random, brand: str) -> str:
    initials = "".join(word[0] for word in re.findall(r"[A-Za-z0-9]+", brand)).upper()
    return f"{initials}-{rng.randrange(10000, 100000)}"


def _product_row(rng: random.Random, line: Line, brand: str, name: str, size: tuple) -> dict:
    _, low, high = size
    price = price_between(rng, low, high)
    cost = (price * Decimal(rng.randint(60, 75)) / 100).quantize(Decimal("0.01"))
    point, qty = line.reorder
    point += rng.randint(0, point // 2)
    return {
        "name": name,
        "brand": brand,
        "classification": line.classification,
        "unit": line.unit,
        "tracks_expiry": line.tracks_expiry,
        "default_cost": cost,
        "default_price": price,
        "reorder_point": Decimal(point),
        "reorder_qty": Decimal(qty),
    }


def group_products(rng: random.Random, group: Group, count: int) -> list[dict]:
    """``count`` distinct products of ``group`` (without SKU or barcodes yet)."""
    rows: list[dict] = []
    names: set[str] = set()
    weights = [line.weight for line in group.lines]
    attempts = 0
    while len(rows) < count:
        attempts += 1
        if attempts > count * 200:
            raise RuntimeError(f"Not enough distinct names for the {group.key} group.")
        line = rng.choices(group.lines, weights=weights)[0]
        brand = rng.choice(group.brands)
        variety = rng.choice(line.varieties) if line.varieties else ""
        size = rng.choice(line.sizes)
        name = " ".join(line.pattern.format(brand=brand, variety=variety, size=size[0]).split())
        if name in names:
            continue
        names.add(name)
        rows.append(_product_row(rng, line, brand, name, size))
    return rows


def catalog_rows(
    seed: int, slug: str, groups: tuple[Group, ...], total: int, kind: str
) -> list[dict]:
    """The rows for ``product_upsert_many``: deterministic for a given seed and organisation."""
    rng = random.Random(f"{seed}:{slug}:catalog")
    gtins = GtinMaker(rng)
    skus: set[str] = set()
    rows: list[dict] = []
    for group, count in zip(groups, split_counts(groups, total), strict=True):
        for row in group_products(rng, group, count):
            if kind == "cannabis":
                row["sku"] = cannabis_sku(rng, skus)
            else:
                row["sku"] = grocery_sku(rng, skus, group)
            row["barcodes"] = [{"code": gtins.make(row["brand"]), "kind": "gtin"}]
            rows.append(row)
    supplier_codes: set[str] = set()
    for row in rng.sample(rows, SUPPLIER_CODES_PER_ORG):
        code = supplier_code(rng, row["brand"])
        while code in supplier_codes:
            code = supplier_code(rng, row["brand"])
        supplier_codes.add(code)
        row["barcodes"].append({"code": code, "kind": "supplier"})
    return rows


def create_org(spec: dict) -> tuple[Organization, dict[str, Store], dict[str, dict]]:
    org = org_create(
        slug=spec["slug"], name=spec["name"], time_zone=spec["time_zone"], **spec["settings"]
    )
    stores: dict[str, Store] = {}
    locations: dict[str, dict] = {}
    with tenant_scope(org):
        for item in spec["stores"]:
            store = store_create(
                org=org,
                code=item["code"],
                name=item["name"],
                time_zone=item["time_zone"],
                cova_location_id=item["cova_location_id"],
            )
            for code, name, kind, sellable, order in item["rooms"]:
                location_create(
                    org=org,
                    store=store,
                    code=code,
                    name=name,
                    kind=kind,
                    sellable=sellable,
                    sort_order=order,
                )
            stores[store.code] = store
            locations[store.code] = {loc.code: loc for loc in Location.objects.filter(store=store)}
        for classification, (category, subcategory) in spec["classifications"].items():
            ClassificationMapping.objects.update_or_create(
                org=org,
                classification=classification,
                defaults={"category": category, "subcategory": subcategory},
            )
    return org, stores, locations


def create_people(
    org: Organization, people: tuple, stores: dict[str, Store], password_hash: str
) -> dict:
    """One member per entry of ``people``; all share the demo password (hashed once)."""
    users = {}
    with tenant_scope(org):
        for local, role, first, last, store_codes in people:
            email = demo_email(local, org.slug)
            membership = membership_create(
                org=org,
                email=email,
                role=role,
                first_name=first,
                last_name=last,
                stores=[stores[code] for code in store_codes],
            )
            user = membership.user
            user.password = password_hash  # what set_password(DEMO_PASSWORD) would store
            user.save(update_fields=["password"])
            users[email] = user
    return users


def create_devices(org: Organization, users: dict) -> list[dict]:
    tokens = []
    with tenant_scope(org):
        for device, local in DEVICES:
            email = demo_email(local, org.slug)
            _, key = api_token_create(org=org, user=users[email], name=device)
            tokens.append({"org": org.slug, "device": device, "user": email, "key": key})
    return tokens


def create_platform_admin(password_hash: str):
    User = get_user_model()
    user = User.objects.filter(email__iexact=PLATFORM_ADMIN_EMAIL).first() or User(
        username=PLATFORM_ADMIN_EMAIL,
        email=PLATFORM_ADMIN_EMAIL,
        first_name="Platform",
        last_name="Root",
    )
    user.is_staff = user.is_superuser = user.is_active = True
    user.password = password_hash
    user.save()
    return user
