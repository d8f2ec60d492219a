"""Pilot evaluation: linked before/after cohorts, within-group change, treated versus comparison.

Plain functions over the long assessment frame (``pupil_id``, ``wave``, a group column,
``municipality``, outcome columns). The waves (in order: the first is before, the last
after), the group column and the treated and comparison values are parameters; the
defaults (waves 'pre'/'post', column ``group``, 'pilot' against every other pupil) are the
convention of hand-made frames and of the R references. Every function returns a tidy
table (``analyses.tidy.tidy_frame``) whose rows name their method; the R scripts in
``tests/reference/evaluation.R`` hold the reference numbers they are tested against.
"""

from analyses.evaluation.did import difference_in_differences, random_intercept_did
from analyses.evaluation.linking import attrition_balance, flow_table, link_waves
from analyses.evaluation.matching import balance_table, propensity_match
from analyses.evaluation.paired import within_group_change
from analyses.evaluation.specialists import sector_cooperation_change

__all__ = [
    "attrition_balance",
    "balance_table",
    "difference_in_differences",
    "flow_table",
    "link_waves",
    "propensity_match",
    "random_intercept_did",
    "sector_cooperation_change",
    "within_group_change",
]
