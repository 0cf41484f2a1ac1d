"""Reads an HTML report back: sections, images and every URL it references."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class ReportParser(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.sections: list[str] = []
        self.images: list[dict[str, str]] = []
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.body: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(attributes.get("id", ""))
        if tag == "img":
            self.images.append(attributes)
        if tag == "body":
            self.body = attributes
        for key in ("src", "href", "srcset", "poster", "data", "action"):
            if key in attributes:
                self.urls.append(attributes[key])


def external_urls(html: str) -> list[str]:
    """http(s) and protocol-relative references anywhere in the markup or styles."""
    return re.findall(
        r"""(?:https?:)?//[^\s"'<>)]+""", re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    )
