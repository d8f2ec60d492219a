"""Pilot evaluation: linked pre/post cohorts, within-group change, pilot versus comparison.

Plain functions over the long pilot-assessment frame (``pupil_id``, ``wave`` 'pre'/'post',
``group`` 'pilot'/'comparison', ``municipality``, outcome columns). Every function returns
a tidy table (``analyses.tidy.tidy_frame``) whose rows name their method; the R scripts in
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
