"""The Dagster code location `dagster dev` loads (make dev): the study named by MAPSTUDY_STUDY.

The demo study when the variable is unset. How the definitions are built, and why an
asset is left out of a study: pipelines/study_definitions.py.
"""

from pipelines.freshness import use_graph
from pipelines.study_definitions import build_definitions, study_key_prefix

defs, skipped_lines = build_definitions(key_prefix=study_key_prefix())
use_graph(defs)
