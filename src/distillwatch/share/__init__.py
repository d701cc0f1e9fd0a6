"""Sharing a scan's findings with partners: STIX 2.1 bundles out and in."""

from distillwatch.share.stix import (
    BUNDLE_FILENAME,
    EXTENSION_ID,
    campaigns_to_bundle,
    read_indicators,
    write_bundle,
)

__all__ = [
    "BUNDLE_FILENAME",
    "EXTENSION_ID",
    "campaigns_to_bundle",
    "read_indicators",
    "write_bundle",
]
