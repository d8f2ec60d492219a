"""Personas: latent classes of pupil profiles, validated, turned into persona-card data.

Plain functions over numpy/pandas (no Dagster, no files): encode the indicators
(:mod:`personas.encoding`), fit k = 1..K classes with many starts
(:mod:`personas.fitting`), choose k (:mod:`personas.selection`), judge the solution
(:mod:`personas.quality`, :mod:`personas.stability`), build the card data
(:mod:`personas.cards`) and assign new pupils (:mod:`personas.assignment`).
"""

from personas.assignment import assign_classes, stepmix_model
from personas.cards import persona_profiles
from personas.encoding import IndicatorMatrix, encode_indicators, encode_like
from personas.fitting import LcaFit, LcaSolution, fit_latent_classes, posterior
from personas.quality import quality_table
from personas.selection import choose_k, indicator_rows, no_fit_rows, selection_table, usable_indicators
from personas.progress import reporting, with_progress
from personas.stability import bootstrap_stability, kmodes_agreement

__all__ = [
    "IndicatorMatrix",
    "LcaFit",
    "LcaSolution",
    "assign_classes",
    "bootstrap_stability",
    "choose_k",
    "encode_indicators",
    "encode_like",
    "fit_latent_classes",
    "indicator_rows",
    "kmodes_agreement",
    "no_fit_rows",
    "persona_profiles",
    "posterior",
    "quality_table",
    "reporting",
    "selection_table",
    "stepmix_model",
    "usable_indicators",
    "with_progress",
]
