"""The codebooks as tables (`meta.variables`, `meta.value_labels`, `meta.study`).

Reports and exports label codes from these tables instead of reading YAML, so a report
renders from the DuckDB file alone and an exported SPSS file gets the same labels.
"""

from __future__ import annotations

import pandas as pd

from pipelines.config import Codebook, Study
from pipelines.ingest.typing import anon_columns


def variables_table(codebooks: dict[str, Codebook]) -> pd.DataFrame:
    rows = []
    for instrument, cb in sorted(codebooks.items()):
        published = set(anon_columns(cb))
        for name, var in cb.variables.items():
            rows.append({"instrument": instrument, "variable": name, "type": var.type, "role": var.role,
                         "label_et": var.label.et, "label_en": var.label.en, "scales": ",".join(var.scales) or None,
                         "reverse": var.reverse, "value_set": var.values, "group": var.group,
                         "published": name in published})
        for name, d in cb.derived.items():
            rows.append({"instrument": instrument, "variable": name, "type": d.type, "role": d.role,
                         "label_et": d.label.et, "label_en": d.label.en, "scales": None, "reverse": False,
                         "value_set": None, "group": None, "published": True})
    return pd.DataFrame(rows)


def value_labels_table(codebooks: dict[str, Codebook]) -> pd.DataFrame:
    rows = []
    for instrument, cb in sorted(codebooks.items()):
        for name, var in cb.variables.items():
            if var.values is None:
                continue
            for code, body in cb.value_sets[var.values].codes.items():
                rows.append({"instrument": instrument, "variable": name, "code": str(code),
                             "label_et": body.et, "label_en": body.en})
    return pd.DataFrame(rows)


def study_table(study: Study) -> pd.DataFrame:
    rows = {"study": study.study, "title_et": study.title.et, "title_en": study.title.en,
            "reference_date": study.reference_date.isoformat(), "min_cell": str(study.privacy.min_cell),
            "k_anonymity": str(study.privacy.k_anonymity), "demo": str(study.demo).lower()}
    rows |= {f"county:{cid}": c.name for cid, c in study.counties.items()}
    return pd.DataFrame(sorted(rows.items()), columns=["key", "value"])


def municipalities_table(study: Study) -> pd.DataFrame:
    return pd.DataFrame([{"county": cid, "county_name": c.name, "project": c.project, "municipality": m.name}
                         for cid, c in study.counties.items() for m in c.municipalities])
