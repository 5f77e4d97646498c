"""Influencers, campaigns, tracked links, discount codes, social posts and the store settings.

Other domains read the settings through ``get_store_settings`` and ``webhook_secret``; tracked
link destinations are checked with ``storeloop.kit.urls.destination_allowed``, the rule the
redirect applies again.
"""

from storeloop.influencers.service.campaigns import (
    campaign_names,
    create_campaign,
    get_campaign,
    list_campaigns,
    update_campaign,
)
from storeloop.influencers.service.codes import (
    create_discount_code,
    discount_code_key,
    get_discount_code,
    list_discount_codes,
    update_discount_code,
)
from storeloop.influencers.service.common import (
    MAX_IMPORT_BYTES,
    CodeTaken,
    DestinationNotAllowed,
    InfluencerNotInCampaign,
    InvalidCode,
    InvalidCsv,
    InvalidDomain,
    OwnerRequired,
    PostExists,
    UnknownReference,
    UnsupportedMediaType,
)
from storeloop.influencers.service.influencers import (
    create_influencer,
    get_influencer,
    influencer_names,
    list_influencers,
    resolve_campaign,
    resolve_influencer,
    update_influencer,
)
from storeloop.influencers.service.links import (
    create_link,
    generate_code,
    get_link,
    list_links,
    short_url,
    update_link,
)
from storeloop.influencers.service.posts import (
    count_csv_rows,
    create_post,
    decode_csv,
    get_post,
    import_posts,
    list_posts,
    update_post,
)
from storeloop.influencers.service.settings import (
    WebhookProvider,
    get_store_settings,
    settings_out,
    update_store_settings,
    webhook_secret,
)
from storeloop.kit.errors import PayloadTooLarge
from storeloop.kit.pagination import MAX_PAGE_SIZE

__all__ = [
    "MAX_IMPORT_BYTES",
    "MAX_PAGE_SIZE",
    "CodeTaken",
    "DestinationNotAllowed",
    "InfluencerNotInCampaign",
    "InvalidCode",
    "InvalidCsv",
    "InvalidDomain",
    "OwnerRequired",
    "PayloadTooLarge",
    "PostExists",
    "UnknownReference",
    "UnsupportedMediaType",
    "WebhookProvider",
    "campaign_names",
    "count_csv_rows",
    "create_campaign",
    "create_discount_code",
    "create_influencer",
    "create_link",
    "create_post",
    "decode_csv",
    "discount_code_key",
    "generate_code",
    "get_campaign",
    "get_discount_code",
    "get_influencer",
    "get_link",
    "get_post",
    "get_store_settings",
    "import_posts",
    "influencer_names",
    "list_campaigns",
    "list_discount_codes",
    "list_influencers",
    "list_links",
    "list_posts",
    "resolve_campaign",
    "resolve_influencer",
    "settings_out",
    "short_url",
    "update_campaign",
    "update_discount_code",
    "update_influencer",
    "update_link",
    "update_post",
    "update_store_settings",
    "webhook_secret",
]
