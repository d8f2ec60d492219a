"""Services: what exists per municipality, how full it is, and where need exceeds supply.

Plain functions over the service mapping (one row per service) and the pupils' survey.
Tables are tidy (:mod:`analyses.tidy`), per study, county and municipality (``county`` and
``municipality`` hold ``"all"`` where a row covers more than one).

Method choices, named in the rows:

- inventory: number of services, places (capacity) and current users summed over the
  services of a category; utilisation = users / places (ratio of sums, no interval: the
  mapping is a census of services, not a sample); waiting days: median with type-7
  quartiles and IQR; availability: share of services at the top availability code, with
  a Wilson interval;
- need: share of pupils with each need (0/1 column, answered pupils as denominator) with
  a Wilson interval, on the wave the caller passes (the baseline);
- supply: places of the service types that meet the need, per 1,000 pupils of the
  place (the pupils' survey is taken as the place's pupil count);
- gap: need per 1,000 pupils minus places per 1,000 pupils. Its interval carries the
  need's Wilson interval (x 1,000) and treats the places as known. ``reading``:
  ``no_supply`` (need but no places at all), ``gap`` (the whole interval above 0),
  ``no_gap`` (the whole interval below 0), ``unclear`` (it straddles 0), ``no_need``
  (nobody reported the need).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analyses.descriptives import as_numeric
from analyses.intervals import WILSON, wilson_interval
from analyses.specialists import ALL, places
from analyses.tidy import tidy_frame

PER = 1000
DIMENSIONS = ("service_type", "provider_type", "target_age_group")


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def inventory(services: pd.DataFrame, dimensions: Sequence[str] = DIMENSIONS, available_code: object = 3,
              conf_level: float = 0.95) -> pd.DataFrame:
    """Services, places, users, utilisation, waiting days and availability per place and category.

    One block per dimension (``dimension``, ``category``), plus ``dimension`` ``"all"``.
    """
    rows = []
    present = [d for d in dimensions if d in services.columns]
    for ids, sub in places(services):
        groups = [("all", "all", sub)]
        for dimension in present:
            groups += [(dimension, _text(c), g) for c, g in sub.groupby(dimension, sort=True)]
        for dimension, category, g in groups:
            common = {**ids, "dimension": dimension, "category": category, "correction": "none"}
            capacity = as_numeric(g["capacity"], "capacity") if "capacity" in g else pd.Series(dtype=float)
            users = as_numeric(g["current_users"], "current_users") if "current_users" in g else pd.Series(dtype=float)
            rows.append({**common, "measure": "services", "estimate": float(len(g)), "n": len(g),
                         "method": "count_of_services", "ci_method": "none"})
            rows.append({**common, "measure": "capacity", "estimate": float(capacity.sum()),
                         "n": int(capacity.notna().sum()), "method": "sum_of_places", "ci_method": "none"})
            rows.append({**common, "measure": "current_users", "estimate": float(users.sum()),
                         "n": int(users.notna().sum()), "method": "sum_of_current_users", "ci_method": "none"})
            both = capacity.notna() & users.notna()
            places_known = float(capacity[both].sum())
            rows.append({**common, "measure": "utilisation",
                         "estimate": float(users[both].sum()) / places_known if places_known > 0 else np.nan,
                         "n": int(both.sum()), "method": "ratio_of_sums_users_to_places", "ci_method": "none"})
            if "waiting_days" in g:
                days = as_numeric(g["waiting_days"], "waiting_days").dropna().to_numpy(float)
                q1, median, q3 = np.quantile(days, [0.25, 0.5, 0.75], method="linear") if days.size else (np.nan,) * 3
                rows.append({**common, "measure": "waiting_days_median", "estimate": median, "q1": q1, "q3": q3,
                             "iqr": q3 - q1, "n": int(days.size), "method": "median_quantile_type7",
                             "ci_method": "none"})
            if "availability" in g:
                answered = g["availability"].dropna()
                top = int((answered.map(_text) == _text(available_code)).sum())
                low, high = wilson_interval(top, len(answered), conf_level)
                rows.append({**common, "measure": "available_share",
                             "estimate": top / len(answered) if len(answered) else np.nan, "conf_low": low,
                             "conf_high": high, "n": len(answered), "count": top,
                             "method": f"share_of_services_with_availability_{_text(available_code)}",
                             "ci_method": WILSON})
    return tidy_frame(rows, ["county", "municipality", "dimension", "category", "measure"],
                      ["q1", "q3", "iqr", "count"])


def need_shares(pupils: pd.DataFrame, needs: Mapping[str, str], conf_level: float = 0.95) -> pd.DataFrame:
    """Share and number of pupils with each need (``needs``: name -> 0/1 column), per place, Wilson CI."""
    rows = []
    for ids, sub in places(pupils):
        for need, column in needs.items():
            values = as_numeric(sub[column], column).dropna() if column in sub else pd.Series(dtype=float)
            total, count = len(values), int((values == 1).sum())
            low, high = wilson_interval(count, total, conf_level)
            rows.append({**ids, "need": need, "estimate": count / total if total else np.nan, "conf_low": low,
                         "conf_high": high, "n": total, "count": count, "pupils": len(sub),
                         "method": "proportion_of_pupils_with_need", "ci_method": WILSON, "correction": "none"})
    return tidy_frame(rows, ["county", "municipality", "need"], ["count", "pupils"])


def service_gaps(needs: pd.DataFrame, services: pd.DataFrame, service_types: Mapping[str, Sequence[str]],
                 type_column: str = "service_type") -> pd.DataFrame:
    """Need against supply per place and need (``needs`` from :func:`need_shares`).

    ``service_types``: need -> the service types that meet it. Places with pupils but no
    services of those types get zero supply (``no_supply`` when anyone has the need).
    """
    capacity = as_numeric(services["capacity"], "capacity").fillna(0) if len(services) else pd.Series(dtype=float)
    frame = services.assign(_capacity=capacity)
    supply: dict[tuple[str, str, str], tuple[float, int]] = {}
    for ids, sub in places(frame):
        for need, types in service_types.items():
            chosen = sub.loc[sub[type_column].astype(str).isin([str(t) for t in types])]
            supply[(ids["county"], ids["municipality"], need)] = (float(chosen["_capacity"].sum()), len(chosen))
    rows = []
    for row in needs.itertuples(index=False):
        if row.need not in service_types:
            continue
        places_total, n_services = supply.get((row.county, row.municipality, row.need), (0.0, 0))
        pupils = int(row.pupils)
        if pupils == 0 or not np.isfinite(row.estimate):
            continue
        supply_per = PER * places_total / pupils
        need_per = PER * row.estimate
        low, high = PER * row.conf_low - supply_per, PER * row.conf_high - supply_per
        if row.count == 0:
            reading = "no_need"
        elif places_total == 0:
            reading = "no_supply"
        elif low > 0:
            reading = "gap"
        elif high < 0:
            reading = "no_gap"
        else:
            reading = "unclear"
        rows.append({"county": row.county, "municipality": row.municipality, "need": row.need,
                     "estimate": need_per - supply_per, "conf_low": low, "conf_high": high, "n": int(row.n),
                     "need_count": int(row.count), "need_share": float(row.estimate),
                     "need_per_1000": need_per, "need_low_per_1000": PER * row.conf_low,
                     "need_high_per_1000": PER * row.conf_high, "places": places_total, "services": n_services,
                     "places_per_1000": supply_per, "pupils": pupils,
                     "coverage": places_total / row.count if row.count else np.nan,
                     "service_types": ", ".join(map(str, service_types[row.need])), "reading": reading,
                     "method": "need per 1,000 pupils minus places per 1,000 pupils",
                     "ci_method": "wilson interval of the need (x 1,000); places taken as known",
                     "correction": "none"})
    return tidy_frame(rows, ["county", "municipality", "need"],
                      ["need_count", "need_share", "need_per_1000", "need_low_per_1000", "need_high_per_1000",
                       "places", "services", "places_per_1000", "pupils", "coverage", "service_types", "reading"])


__all__ = ["ALL", "PER", "inventory", "need_shares", "service_gaps"]
