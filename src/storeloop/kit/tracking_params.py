"""The names of the marketing query parameters a landing URL may carry, defined once."""

from __future__ import annotations

import re

# Carries a storeloop click id on a landing URL (appended by the /r/ redirect).
CLICK_ID_PARAMETER = "sl_click"

# A tracked link's code: 3-64 letters, digits, - or _, starting with a letter or digit. Use with
# fullmatch (``$`` would also accept a trailing newline).
LINK_CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,63}")

UTM_PARAMETERS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

# Click ids the ad and social platforms append to outbound links.
AD_CLICK_ID_PARAMETERS = (
    "gclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "ttclid",
    "msclkid",
    "li_fat_id",
    "twclid",
    "epik",
    "sccid",
)

MARKETING_PARAMETERS = frozenset((*UTM_PARAMETERS, CLICK_ID_PARAMETER, *AD_CLICK_ID_PARAMETERS))
