"""Ready-to-open share URLs for each social method, each carrying the referral link."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from referrals.config import Site


def share_urls(site: Site, code: str) -> list[tuple[str, str]]:
    """(method, url) for the site's methods; EMAIL is always offered."""
    link = site.referral_link(code)
    message = f"Join me at {site.name} with my code {code} and get {site.offer_text}: {link}"
    urls = {
        "EMAIL": "mailto:?" + urlencode({"subject": f"A gift from {site.name}", "body": message}, quote_via=quote),
        "FACEBOOK": "https://www.facebook.com/sharer/sharer.php?" + urlencode({"u": link}),
        "MESSENGER": "fb-messenger://share/?" + urlencode({"link": link}),
        "SMS": "sms:?" + urlencode({"body": message}, quote_via=quote),
        "TWITTER": "https://twitter.com/intent/tweet?" + urlencode({"text": message}),
        "VK": "https://vk.com/share.php?" + urlencode({"url": link}),
        "WEIBO": "https://service.weibo.com/share/share.php?" + urlencode({"url": link, "title": message}),
        "WHATSAPP": "https://wa.me/?" + urlencode({"text": message}),
    }
    methods = ["EMAIL", *(m for m in site.share_methods if m != "EMAIL")]
    return [(method, urls[method]) for method in methods]
