"""Asset keys and tags shared by the asset modules.

Which instruments have assets is the study's business (``Study.instruments``), never a
constant here: see ``pipelines.study_definitions.build_definitions``.
"""

from __future__ import annotations

import dagster as dg

#: Tag by which an asset says which part of the analysis plan it needs ("personas",
#: "evaluation", "models" ...); study_definitions.py leaves it out when the plan has no such part.
PLAN_TAG = "mapstudy/plan"
#: Tag of an asset that shows whatever of its deps the study has (e.g. the technical
#: report): left out only when none of them is left, its dropped deps otherwise removed.
DEPS_TAG = "mapstudy/deps"
#: Tag naming ("schema.table"; Dagster allows no '/' in tag values) a dep of such an asset
#: that gives it context but nothing to show on its own (meta.* always count as context):
#: when only context is left, the asset is left out too.
CONTEXT_TAG = "mapstudy/context"


def meta_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["meta", table])


def output_key(context: dg.AssetExecutionContext, *path: str) -> dg.AssetKey:
    """This asset's key whose path ends with ``path``.

    ``build_definitions`` may put every key under the study's prefix (``demo/results/models``),
    so an asset yielding results for several keys names them through this, never literally.
    """
    for key in context.assets_def.keys:
        if list(key.path[-len(path):]) == list(path):
            return key
    return dg.AssetKey(list(path))
