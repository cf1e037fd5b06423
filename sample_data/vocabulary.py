"""Word lists and weights for the retail sample (names, places, catalogue, calendar)."""

from __future__ import annotations

from datetime import date

import numpy as np


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    """Split a compact word list (keeps the constant tables short)."""
    return tuple(text.split(sep))


_FIRST_NAMES = _words(
    "James Mary John Patricia Robert Jennifer Michael Linda David Emma William Sofia Lucas Olivia "
    "Noah Mia Liam Hannah Yuki Ana Mateo Chloe Ethan Lea Omar Priya Jonas Elena Ravi Grace"
)
_LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Martin Lopez Wilson Anderson Taylor "
    "Thomas Moore Jackson White Harris Clark Lewis Muller Schmidt Dubois Rossi Tanaka Sato Jansen"
)
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_COUNTRIES = {  # ISO-2 code -> (share of customers, "|"-separated cities)
    "US": (0.42, "New York|Los Angeles|Chicago|Houston|Phoenix|Seattle|Austin|Boston|Denver"),
    "GB": (0.10, "London|Manchester|Birmingham|Leeds|Glasgow"),
    "DE": (0.09, "Berlin|Hamburg|Munich|Cologne|Frankfurt"),
    "CA": (0.08, "Toronto|Vancouver|Montreal|Calgary"),
    "FR": (0.07, "Paris|Lyon|Marseille|Toulouse"),
    "NL": (0.05, "Amsterdam|Rotterdam|Utrecht"),
    "ES": (0.05, "Madrid|Barcelona|Valencia"),
    "AU": (0.05, "Sydney|Melbourne|Brisbane"),
    "IT": (0.05, "Rome|Milan|Naples"),
    "JP": (0.04, "Tokyo|Osaka|Yokohama"),
}
_SEGMENTS = ("consumer", "small_business", "corporate")
_SEGMENT_P = (0.75, 0.17, 0.08)
_SEGMENT_ACTIVITY = np.array([1.0, 1.6, 2.5])
_CATEGORIES = {  # name -> (share of products and demand, median price, brands, nouns)
    "electronics": (0.16, 120.0, "Voltix|Nexon|Auralis", "Headphones|Smartwatch|Charger|Speaker"),
    "books": (0.12, 16.0, "Pagewise|Inkwell|Northstar", "Novel|Cookbook|Atlas|Biography"),
    "home": (0.12, 38.0, "Hearthly|Casanova|Linenry", "Lamp|Blanket|Mug Set|Pillow|Vase"),
    "garden": (0.07, 32.0, "GreenThumb|Bloomfield", "Hose|Planter|Shears|Seed Kit"),
    "toys": (0.08, 24.0, "Playmo|Brickly|FunForge", "Puzzle|Robot Kit|Plush Bear|Board Game"),
    "sports": (0.09, 42.0, "Stridex|PeakForm|AquaFit", "Yoga Mat|Dumbbells|Water Bottle"),
    "beauty": (0.08, 19.0, "Lumiere|Glowlab", "Serum|Face Cream|Lipstick|Shampoo"),
    "grocery": (0.12, 7.0, "FarmFresh|PantryCo", "Coffee Beans|Olive Oil|Granola|Green Tea"),
    "fashion": (0.11, 45.0, "Urbanite|Threadline|Nordwear", "T-Shirt|Jeans|Jacket|Sneakers"),
    "office": (0.05, 20.0, "Deskly|Papermill", "Notebook|Pen Set|Desk Organizer|Stapler"),
}
_CAT_NAMES = tuple(_CATEGORIES)
_CAT_SHARE = [v[0] for v in _CATEGORIES.values()]
_BRANDS = [_words(v[2], "|") for v in _CATEGORIES.values()]
_NOUNS = [_words(v[3], "|") for v in _CATEGORIES.values()]
_ADJECTIVES = _words("Classic Premium Compact Eco Pro Deluxe Essential Smart Vintage Ultra")
_SEARCH_TERMS = tuple(
    dict.fromkeys([*_CAT_NAMES, *(w.lower() for g in _BRANDS + _NOUNS for w in g)])
)
_CHANNELS, _CHANNEL_P, _STORE = ("web", "mobile", "store"), (0.45, 0.20, 0.35), 2
_STATUSES, _STATUS_P = ("completed", "shipped", "cancelled", "returned"), (0.86, 0.05, 0.05, 0.04)
_DEVICES = ("desktop", "mobile", "tablet")
_DEVICE_CDF = np.cumsum([[0.70, 0.22, 0.08], [0.0, 0.85, 0.15], [0.42, 0.48, 0.10]], axis=1)
_REFERRERS = ("google", "direct", "facebook", "instagram", "email", "bing", "tiktok", None)
_REFERRER_P = (0.34, 0.22, 0.10, 0.07, 0.10, 0.04, 0.03, 0.10)
_EVENT_TYPES = _words(
    "page_view search product_view add_to_cart remove_from_cart checkout purchase"
)
_PV, _SEARCH, _VIEW, _ADD, _REMOVE, _CHECKOUT, _PURCHASE = range(7)
_PAGES = (
    *("/", "/cart", "/checkout", "/checkout/confirmation", "/search", "/deals", "/new-arrivals"),
    *("/account", *(f"/category/{c}" for c in _CAT_NAMES)),
)
_BROWSE_PAGES = np.array([0, *range(5, len(_PAGES))])
# Session template phases: landing, browse, cart (view + add per line), abandoned item
# (view + add + remove), cart page view, checkout, purchase.
_N_PHASES = 7
_HOUR_W = np.array(
    [4, 2, 2, 1, 1, 2, 4, 8, 12, 16, 18, 20, 22, 20, 18, 18, 20, 22, 26, 30, 32, 28, 20, 9]
)
_MONTH_W = np.array([0.95, 0.82, 0.95, 0.97, 1.0, 0.97, 0.95, 1.0, 0.97, 1.05, 1.4, 1.65])
_WEEKDAY_W = np.array([0.95, 0.93, 0.95, 1.0, 1.08, 1.12, 1.02])  # Monday first
_PROMO_DAYS = {date(2024, 11, 29): 3.0, date(2024, 12, 2): 2.0, date(2025, 11, 28): 3.0}
