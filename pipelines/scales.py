"""The codebooks' scales as `analyses.scales.ScaleDefinition`s, and scored tables.

The codebook says which items belong to a scale, which are reverse-keyed, the answer range
(from the items' value set) and how many items must be answered; the statistics take a
plain definition. This is the one translation between the two, used by every asset that
needs scale scores (reliability, evaluation, personas).
"""

from __future__ import annotations

import pandas as pd

from analyses.scales import ScaleDefinition, score_scale
from pipelines.config import Codebook


def scale_definitions(codebook: Codebook) -> list[ScaleDefinition]:
    definitions = []
    for name, scale in codebook.scales.items():
        items = codebook.scale_items(name)
        codes = [int(c) for c in codebook.value_sets[codebook.variables[items[0]].values].codes]  # type: ignore[index]
        definitions.append(ScaleDefinition(
            name=name, items=tuple(items), min_value=min(codes), max_value=max(codes),
            reverse_keyed=tuple(i for i in items if codebook.variables[i].reverse),
            min_answered=scale.min_answered,
        ))
    return definitions


def with_scale_scores(frame: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """The frame with one column per scale (the score) beside its items.

    A scale whose items the frame lacks is left out: a frame narrowed by its caller, or a
    study whose codebook override removed items, still gets every scale it can score.
    """
    out = frame.copy()
    for definition in scale_definitions(codebook):
        if set(definition.items) <= set(out.columns):
            out[definition.name] = score_scale(out, definition)[definition.name]
    return out
