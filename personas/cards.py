"""The data of a persona card: size, what sets the class apart, outcomes, places, support.

Every number on a card is one row of the tidy ``results.persona_profiles`` table, with
``section`` saying which part of the card it feeds:

- ``size``: modal class count and share with a Wilson score interval (R's
  ``prop.test(correct = FALSE)``); the interval ignores classification uncertainty,
  which the quality table reports separately. A ``class_weight`` row gives the model's
  estimated share.
- ``characteristic``: P(answer | class) from the model against the share among all
  pupils implied by the model, with the difference and the lift (ratio), ranked by the
  absolute difference: a lift on a rare answer can be large while moving few pupils.
  Scale scores give the class mean against the overall mean (difference in SD units).
- ``outcome``: outcome rates per class by three-step estimation with StepMix's BCH
  (Vermunt 2010; Bolck, Croon & Hagenaars 2004) or ML correction (Bakk, Tekle & Vermunt
  2013). The measurement model is held fixed, so outcomes never shift the classes.
- ``municipality``: modal class counts per group; ``small_cell`` flags counts
  1..min_cell-1 (the study's rule, ``analyses.small_cells``) for the privacy layer,
  which suppresses them before anything is published; characteristic and support
  shares that would give back such a count are flagged too.
- ``support``: share of the class's modally assigned pupils who received each measure,
  with a Wilson interval.
- ``name`` and ``description``: short texts in Estonian and English generated from the
  top characteristics, or the researcher's override.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from stepmix.corrections import compute_bch_matrix, compute_log_emission_pm
from stepmix.utils import modal as modal_one_hot

from analyses.intervals import WILSON, wilson_interval  # noqa: F401  (wilson_interval: re-exported)
from analyses.small_cells import DEFAULT_MIN_CELL, is_small, share_reveals_small
from analyses.tidy import tidy_frame
from personas.assignment import stepmix_model
from personas.encoding import IndicatorMatrix, encode_indicators
from personas.fitting import LcaSolution, posterior

ID_COLUMNS = ["analysis", "n_classes", "class", "section", "variable", "level", "group"]
EXTRA_COLUMNS = ["reference", "difference", "lift", "rank", "small_cell", "text_et", "text_en"]
#: EM iterations of StepMix's ML correction step (structural parameters only).
ML_MAX_ITER = 1000
OVERRIDE_KEYS = ("name_et", "name_en", "description_et", "description_en")


def _row(k: int, c: int | None, section: str, **values) -> dict:
    base = {"analysis": "persona_profile", "n_classes": k, "class": None if c is None else c + 1, "section": section,
            "variable": pd.NA, "level": pd.NA, "group": pd.NA, "ci_method": pd.NA, "correction": pd.NA}
    return {**base, **values}


def size_rows(solution: LcaSolution, modal: np.ndarray, min_cell: int = DEFAULT_MIN_CELL) -> list[dict]:
    k, n = solution.n_classes, len(modal)
    rows = []
    for c in range(k):
        count = int(np.sum(modal == c))
        low, high = wilson_interval(count, n)
        rows.append(_row(k, c, "size", variable="modal_share", estimate=count / n, conf_low=low, conf_high=high,
                         n=count, small_cell=is_small(count, min_cell),
                         method="share of pupils modally assigned to the class", ci_method=WILSON))
        rows.append(_row(k, c, "size", variable="class_weight", estimate=float(solution.weights[c]), n=n,
                         method="estimated class share (latent class model weight)"))
    return rows


def characteristic_rows(
    solution: LcaSolution, indicators: IndicatorMatrix, probabilities: np.ndarray, focus_levels: Mapping[str, object],
    min_cell: int = DEFAULT_MIN_CELL,
) -> list[dict]:
    """Class-vs-overall rows for every reported answer level and every scale, ranked per class."""
    k = solution.n_classes
    levels = max(indicators.max_levels, 1)
    per_class: list[list[dict]] = [[] for _ in range(k)]
    for j, name in enumerate(indicators.categorical_names):
        block = solution.item_probabilities[:, j * levels : j * levels + indicators.n_levels[j]]
        overall = solution.weights @ block
        answered = ~np.isnan(indicators.categorical[:, j])
        reported = _reported_levels(indicators.levels[j], focus_levels.get(name))
        for level_index in reported:
            for c in range(k):
                share, reference = float(block[c, level_index]), float(overall[level_index])
                members = int(np.round(probabilities[answered, c].sum()))
                per_class[c].append(_row(k, c, "characteristic", variable=name, level=level_text(indicators.levels[j][level_index]),
                                         estimate=share, reference=reference, difference=share - reference,
                                         lift=share / reference if reference > 0 else np.nan, n=members,
                                         small_cell=share_reveals_small(share, members, min_cell),
                                         method="P(answer | class) from the latent class model vs model-implied overall share"))
    for j, name in enumerate(indicators.continuous_names):
        overall = float(solution.weights @ solution.means[:, j])
        spread = float(np.sqrt(solution.weights @ (solution.variances[:, j] + (solution.means[:, j] - overall) ** 2)))
        answered = ~np.isnan(indicators.continuous[:, j])
        for c in range(k):
            mean = float(solution.means[c, j])
            per_class[c].append(_row(k, c, "characteristic", variable=name, estimate=mean, reference=overall,
                                     difference=(mean - overall) / spread, n=int(np.round(probabilities[answered, c].sum())),
                                     method="class mean from the latent class model vs overall mean; difference in SD units"))
    rows = []
    for class_rows in per_class:
        class_rows.sort(key=lambda r: -abs(r["difference"]))
        for rank, row in enumerate(class_rows, start=1):
            row["rank"] = rank
        rows += class_rows
    return rows


def _reported_levels(levels: Sequence[object], focus: object | None) -> list[int]:
    """Binary indicators report one level (the focus, default the higher code); others all."""
    if focus is not None:
        return [list(levels).index(focus)]
    return [len(levels) - 1] if len(levels) == 2 else list(range(len(levels)))


def outcome_rows(
    solution: LcaSolution,
    indicators: IndicatorMatrix,
    outcomes: pd.DataFrame,
    correction: str = "BCH",
) -> list[dict]:
    """Three-step outcome rates per class with StepMix's BCH or ML correction, one outcome at a time."""
    if correction not in ("BCH", "ML"):
        raise ValueError("correction must be 'BCH' or 'ML'")
    k = solution.n_classes
    rows = []
    soft = posterior(solution, indicators)
    modal = soft.argmax(axis=1)
    for name in outcomes.columns:
        encoded = encode_indicators(outcomes, categorical=[name])
        target = encoded.categorical
        model = stepmix_model(solution, indicators, structural="categorical_nan", fit_rows=True)
        if correction == "BCH":
            _, d_inverse = compute_bch_matrix(soft, "modal")
            model.m_step_structural(modal_one_hot(soft, clip=True) @ d_inverse, target)
        else:
            model.set_params(max_iter=ML_MAX_ITER)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.em(indicators.stepmix_input(), target, freeze_measurement=True,
                         log_emission_pm=compute_log_emission_pm(soft, "modal"))
        rates = model.get_parameters()["structural"]["pis"]
        observed = ~np.isnan(target[:, 0])
        for level_index, level in enumerate(encoded.levels[0]):
            for c in range(k):
                rows.append(_row(k, c, "outcome", variable=name, level=level_text(level),
                                 estimate=float(np.clip(rates[c, level_index], 0.0, 1.0)),
                                 n=int(np.sum(observed & (modal == c))),
                                 method=f"three-step estimate with modal assignment (StepMix n_steps=3, correction={correction!r}); measurement model fixed",
                                 correction=f"{correction} correction for classification error; rate clipped to [0, 1]"))
    return rows


def municipality_rows(k: int, modal: np.ndarray, groups: pd.Series, min_cell: int = DEFAULT_MIN_CELL) -> list[dict]:
    """Modal class counts per group; ``small_cell`` marks 1..min_cell-1 for suppression downstream."""
    table = pd.crosstab(np.asarray(groups), modal + 1)
    rows = []
    for group, counts in table.iterrows():
        total = int(counts.sum())
        for c in range(k):
            count = int(counts.get(c + 1, 0))
            rows.append(_row(k, c, "municipality", group=str(group), estimate=float(count), reference=count / total,
                             n=count, small_cell=is_small(count, min_cell),
                             method="count of pupils modally assigned to the class; reference = share of the group"))
    return rows


def support_rows(k: int, modal: np.ndarray, supports: pd.DataFrame, min_cell: int = DEFAULT_MIN_CELL) -> list[dict]:
    """Share of each class's modally assigned pupils who received each support measure."""
    rows = []
    for name in supports.columns:
        received = pd.to_numeric(supports[name], errors="raise").to_numpy(dtype=float, na_value=np.nan)
        answered = ~np.isnan(received)
        overall = float(np.nanmean(received)) if answered.any() else np.nan
        for c in range(k):
            members = answered & (modal == c)
            count, yes = int(members.sum()), int(np.nansum(received[members]))
            low, high = wilson_interval(yes, count)
            rows.append(_row(k, c, "support", variable=name, estimate=yes / count if count else np.nan,
                             conf_low=low, conf_high=high, n=count, reference=overall,
                             small_cell=is_small(yes, min_cell) or is_small(count - yes, min_cell),
                             method="share who received the measure among modally assigned pupils", ci_method=WILSON))
    return rows


def level_text(level: object) -> str:
    """An answer code as text: 2.0 reads as "2"."""
    if isinstance(level, float) and level.is_integer():
        return str(int(level))
    return str(level)


def _percent(value: float, language: str) -> str:
    text = f"{100 * value:.0f}%"
    return text if language == "en" else text.replace(".", ",")


def generated_texts(class_rows: list[dict], share: float, labels: Mapping[str, Mapping[str, str]], top: int = 3) -> dict[str, str]:
    """Name and description from the top-ranked characteristics (labels per indicator in et/en)."""
    ranked = [r for r in class_rows if r["section"] == "characteristic" and r["lift"] == r["lift"]]
    more = [r for r in ranked if r["difference"] > 0][:top]
    less = [r for r in ranked if r["difference"] < 0][:top]

    def label(row: dict, language: str) -> str:
        text = labels.get(row["variable"], {}).get(language, row["variable"])
        levels_reported = sum(1 for r in ranked if r["variable"] == row["variable"] and r["class"] == row["class"])
        return f"{text}: {row['level']}" if levels_reported > 1 else text

    def listing(items: list[dict], language: str) -> str:
        return "; ".join(f"{label(r, language)} ({_percent(r['estimate'], language)} vs "
                         f"{_percent(r['reference'], language)})" for r in items)

    texts = {}
    for language, head, often, seldom, pupils in (("en", "Often", "more often", "less often", "of pupils"),
                                                  ("et", "Sageli", "sagedamini", "harvem", "õpilastest")):
        if more or less:
            prefix = head if more else ("Seldom" if language == "en" else "Harva")
            texts[f"name_{language}"] = f"{prefix}: " + ", ".join(label(r, language) for r in (more or less)[:2])
        else:
            texts[f"name_{language}"] = "Average profile" if language == "en" else "Keskmine profiil"
        parts = [f"{_percent(share, language)} {pupils}."]
        if more:
            parts.append(("Compared with all pupils, " if language == "en" else "Võrreldes kõigi õpilastega ")
                         + f"{often}: {listing(more, language)}.")
        if less:
            parts.append(f"{seldom.capitalize()}: {listing(less, language)}.")
        texts[f"description_{language}"] = " ".join(parts)
    return texts


def text_rows(k: int, rows: list[dict], solution: LcaSolution, labels, overrides) -> list[dict]:
    out = []
    for c in range(k):
        class_rows = [r for r in rows if r["class"] == c + 1]
        texts = generated_texts(class_rows, float(solution.weights[c]), labels)
        override = dict((overrides or {}).get(c + 1, {}))
        unknown = set(override) - set(OVERRIDE_KEYS)
        if unknown:
            raise ValueError(f"persona override for class {c + 1} has unknown keys {sorted(unknown)}")
        texts.update(override)
        for part in ("name", "description"):
            overridden = any(key.startswith(part) for key in override)
            source = "researcher override" if overridden else "generated from the top characteristics"
            out.append(_row(k, c, part, text_et=texts[f"{part}_et"], text_en=texts[f"{part}_en"],
                            method=f"persona {part}: {source}"))
    return out


def persona_profiles(
    solution: LcaSolution,
    indicators: IndicatorMatrix,
    labels: Mapping[str, Mapping[str, str]],
    outcomes: pd.DataFrame | None = None,
    groups: pd.Series | None = None,
    supports: pd.DataFrame | None = None,
    overrides: Mapping[int, Mapping[str, str]] | None = None,
    focus_levels: Mapping[str, object] | None = None,
    correction: str = "BCH",
    min_cell: int = DEFAULT_MIN_CELL,
) -> pd.DataFrame:
    """Tidy ``results.persona_profiles`` for one solution (rows aligned with ``indicators``).

    ``labels`` maps each indicator to {"et": ..., "en": ...}; ``overrides`` maps a class
    number (1..k) to any of name_et, name_en, description_et, description_en.
    ``min_cell`` is the study's small-cell threshold: ``small_cell`` flags (for the
    publishing layer; every number stays true) a count 1..min_cell-1, a support share
    whose count or complement is small, and a model-implied share that gives back a
    small count (share x the class's pupils, ``analyses.small_cells``).
    """
    k = solution.n_classes
    probabilities = posterior(solution, indicators)
    modal = probabilities.argmax(axis=1)
    rows = size_rows(solution, modal, min_cell)
    rows += characteristic_rows(solution, indicators, probabilities, focus_levels or {}, min_cell)
    if outcomes is not None:
        rows += outcome_rows(solution, indicators, outcomes, correction)
    if groups is not None:
        rows += municipality_rows(k, modal, groups, min_cell)
    if supports is not None:
        rows += support_rows(k, modal, supports, min_cell)
    rows += text_rows(k, rows, solution, labels, overrides)
    frame = tidy_frame(rows, ID_COLUMNS, EXTRA_COLUMNS)
    frame["class"] = pd.array(frame["class"], dtype="Int64")
    frame["rank"] = pd.array(frame["rank"], dtype="Int64")
    frame["small_cell"] = pd.array(frame["small_cell"], dtype="boolean")
    for column in ("reference", "difference", "lift"):
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame
