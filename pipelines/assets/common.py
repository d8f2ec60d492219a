"""Asset keys shared by the asset modules."""

from __future__ import annotations

import dagster as dg

ANON_INSTRUMENTS = ("pupils", "pilot", "specialists", "services")


def meta_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["meta", table])
