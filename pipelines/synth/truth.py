"""The ground-truth model planted in the demo study.

Pupils belong to one of four latent persona classes that drive fourteen binary
characteristics through class-conditional probabilities (a latent class model, the model
the persona analysis fits, so its recovery can be checked). Dropout follows a logistic
model with a school random intercept on the baseline wave, with odds ratios sized like
the literature DOMAIN.md cites (chronic absence ~2.5, failing grades ~2, boys ~1.7, school
SD 0.4 on the logit scale). The term names are the harmonised column names the analyses
will write to results.models, so a test can compare estimates to `DROPOUT_LOG_ODDS`.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import adjusted_rand_score

#: The binary characteristics the persona analysis clusters on (derived indicators of
#: codebooks/pupils.yaml, plus low motivation: motivation scale mean below 3).
INDICATORS: tuple[str, ...] = (
    "chronic_absence", "failing_any", "behaviour_any", "sen_support_any", "repeated_grade",
    "single_parent", "parent_abroad", "low_income", "child_protection_case", "health_concern",
    "mental_health_concern", "bullying", "hobby_education", "low_motivation",
)
CLASS_NAMES: tuple[str, ...] = (
    "disengaged absentee", "struggling learner with SEN", "family-burdened", "emotional/health needs",
)
CLASS_SHARES: tuple[float, ...] = (0.35, 0.25, 0.22, 0.18)

# Profile of each class over INDICATORS: H(igh), M(edium), L(ow) probability. The levels
# were tuned so that the ideal (true-parameter) classifier reaches an ARI of about 0.85.
_PROFILES = (
    "HHHLMMLMLLLLLH",  # disengaged absentee
    "LHMHHLLLLMLMMM",  # struggling learner with SEN
    "MLLLLHHHHLLLLL",  # family-burdened
    "MLLLLLLLLHHHML",  # emotional/health needs
)
_LEVELS = {"H": 0.80, "M": 0.40, "L": 0.09}

#: P(indicator = 1 | class), shape (k, len(INDICATORS)).
CLASS_PROBABILITIES: np.ndarray = np.array([[_LEVELS[c] for c in profile] for profile in _PROFILES])

#: Planted log-odds of the dropout model "dropout_main" (terms as in results.models).
DROPOUT_LOG_ODDS: dict[str, float] = {
    "(Intercept)": -3.45,  # about 13% drop out
    "male": math.log(1.7),
    "chronic_absence": math.log(2.5),
    "failing_any": math.log(2.0),
    "repeated_grade": math.log(1.6),
    "low_income": math.log(1.4),
    "hobby_education": math.log(0.7),
}
SCHOOL_SD = 0.4
MALE_SHARE = 0.56  # boys are over-represented among pupils noticed as needing support


def draw_classes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Persona class index (0..k-1) of n pupils."""
    return rng.choice(len(CLASS_SHARES), size=n, p=np.asarray(CLASS_SHARES))


def draw_indicators(rng: np.random.Generator, classes: np.ndarray) -> np.ndarray:
    """Binary characteristics (n x len(INDICATORS), int8) given each pupil's class."""
    probabilities = CLASS_PROBABILITIES[classes]
    return (rng.random(probabilities.shape) < probabilities).astype(np.int8)


def ideal_classification(indicators: np.ndarray) -> np.ndarray:
    """Most probable class of each pupil under the true parameters (Bayes classifier)."""
    log_p = np.log(CLASS_PROBABILITIES)
    log_q = np.log1p(-CLASS_PROBABILITIES)
    x = indicators.astype(float)
    log_posterior = np.log(np.asarray(CLASS_SHARES)) + x @ log_p.T + (1 - x) @ log_q.T
    return log_posterior.argmax(axis=1)


def ideal_ari(classes: np.ndarray, indicators: np.ndarray) -> float:
    """Adjusted Rand index of the ideal classifier against the planted classes."""
    return float(adjusted_rand_score(classes, ideal_classification(indicators)))


def dropout_linear_predictor(terms: dict[str, np.ndarray], school_effect: np.ndarray) -> np.ndarray:
    """Log-odds of dropping out: the fixed terms plus the pupil's school intercept."""
    eta = np.full(school_effect.shape, DROPOUT_LOG_ODDS["(Intercept)"]) + school_effect
    for term, value in DROPOUT_LOG_ODDS.items():
        if term != "(Intercept)":
            eta = eta + value * terms[term]
    return eta


def draw_dropout(rng: np.random.Generator, terms: dict[str, np.ndarray], school_effect: np.ndarray) -> np.ndarray:
    """Whether each pupil drops out (0/1) under the planted logistic model."""
    eta = dropout_linear_predictor(terms, school_effect)
    return (rng.random(eta.shape) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int8)
