"""One registry of method and warning codes, with their Estonian and English labels.

Result rows carry short codes (``method_code``, ``warning``); reports look the codes up
here (or in their own text files keyed by the same codes) instead of parsing the prose of
the ``method`` / ``correction`` columns. A code is stable: its label may be reworded,
its meaning may not change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """A method or warning code with its labels."""

    code: str
    et: str
    en: str

    def label(self, lang: str) -> str:
        return self.et if lang == "et" else self.en


def _codes(*items: tuple[str, str, str]) -> dict[str, Code]:
    return {code: Code(code, et, en) for code, et, en in items}


#: Methods a report may need to tell apart.
METHODS: dict[str, Code] = _codes(
    ("did_ols_cr2", "vahe-erinevuste OLS, klasterrobustne CR2 (Satterthwaite vabadusastmed)",
     "difference-in-differences OLS, cluster-robust CR2 (Satterthwaite df)"),
    ("did_ols_cr1", "vahe-erinevuste OLS, klasterrobustne CR1 (G - 1 vabadusastet)",
     "difference-in-differences OLS, cluster-robust CR1 (G - 1 df)"),
    ("did_welch", "vahe-erinevus, Welchi t-test muutustele", "difference in differences, Welch t-test of changes"),
    ("did_lmm", "vahe-erinevus, juhusliku vabaliikmega lineaarne segamudel",
     "difference in differences, random-intercept linear mixed model"),
    ("mean", "keskmine", "mean"),
    ("proportion", "osakaal", "proportion"),
    ("paired_t", "paaris-t-test", "paired t-test"),
    ("signed_rank", "Wilcoxoni märgiga astakute test", "Wilcoxon signed-rank test"),
    ("mcnemar", "McNemari test", "McNemar's test"),
    ("welch_t", "Welchi t-test (sõltumatud valimid)", "Welch t-test (independent samples)"),
    ("rank_sum", "Wilcoxoni astakusummatest (Mann-Whitney)", "Wilcoxon rank-sum (Mann-Whitney) test"),
    ("pearson_chisq", "Pearsoni hii-ruut test", "Pearson's chi-square test"),
    ("fisher_exact", "Fisheri täpne test", "Fisher's exact test"),
    ("fisher_monte_carlo", "Fisheri test Monte Carlo p-väärtusega", "Fisher's test, Monte Carlo p-value"),
    # issue 15 estimators (analyses/survey.py, linear_models.py, profile_likelihood.py, two_groups.py,
    # contingency.py)
    ("survey_weighted_mean", "valikudisaini kaaludega keskmine (linearisatsiooni standardviga)",
     "survey-weighted mean (linearisation standard error)"),
    ("survey_weighted_proportion", "valikudisaini kaaludega osakaal (linearisatsiooni standardviga)",
     "survey-weighted proportion (linearisation standard error)"),
    ("survey_weighted_total", "valikudisaini kaaludega kogusumma (linearisatsiooni standardviga)",
     "survey-weighted total (linearisation standard error)"),
    ("survey_logistic_pseudo_ml", "valikudisainiga logistiline regressioon (pseudo-suurima tõepära)",
     "design-based logistic regression (pseudo-maximum likelihood)"),
    ("rao_scott_chisq_F", "Rao-Scotti korrigeeritud hii-ruut test (F)", "Rao-Scott corrected chi-square test (F)"),
    ("ols", "vähimruutude lineaarne regressioon", "ordinary least squares linear regression"),
    ("ancova_ols", "kovariatsioonanalüüs (järeltulemus algtaseme järgi korrigeeritult)",
     "ANCOVA (post score adjusted for the pre score)"),
    ("lmm_reml", "lineaarne segamudel (REML)", "linear mixed model (REML)"),
    ("lmm_ml", "lineaarne segamudel (suurim tõepära)", "linear mixed model (maximum likelihood)"),
    ("logistic_glm_ml", "logistiline regressioon (suurim tõepära)", "logistic regression (maximum likelihood)"),
    ("student_t_pooled_variance", "Studenti t-test (ühine dispersioon)", "Student's t-test (pooled variance)"),
    ("cohens_d_pooled_sd", "Coheni d (ühine standardhälve)", "Cohen's d (pooled SD)"),
    ("hedges_g_pooled_sd", "Hedgesi g (ühine standardhälve, väikese valimi korrektsioon)",
     "Hedges' g (pooled SD, small-sample correction)"),
    ("cramers_v", "Crameri V", "Cramér's V"),
)

#: Warnings a result row can carry in its ``warning`` column ('; '-separated codes).
WARNINGS: dict[str, Code] = _codes(
    ("suppressed_n_below_min", "peidetud: liiga vähe vastajaid", "suppressed: too few respondents"),
    ("small_n", "vähe vastajaid, tõlgenda kirjeldusena", "few respondents, read as description"),
    ("cannot_reach_significance", "test ei saa sellise valimiga olulisust näidata",
     "the test cannot reach significance with so few pairs"),
    ("too_few_clusters", "alla kahe omavalitsuse: klasterrobustne viga puudub",
     "fewer than two clusters: no cluster-robust error"),
    ("one_group_only", "ainult üks rühm: võrdlus puudub", "one group only: nothing to compare"),
    ("few_clusters", "vähe klastreid: CR1 ja z-test on liiga liberaalsed, eelista CR2",
     "few clusters: CR1 and z tests over-reject, prefer CR2"),
    ("one_cluster_per_group", "rühmas vaid üks klaster: efekt on segunenud klastri mõjuga",
     "a group has one cluster only: the effect is confounded with that cluster"),
    ("degenerate_standard_error", "standardviga on null (andmed või klastrid ei võimalda testi)",
     "standard error is zero (the data or clusters allow no test)"),
    ("constant_values", "väärtused on (peaaegu) konstantsed: testi ega vahemikku pole (R: 'data are essentially constant')",
     "values are (essentially) constant: no test or interval (R: 'data are essentially constant')"),
    ("zero_cell", "tühi lahter: Waldi vahemik pole määratud, vaata tingimuslikku täpset vahemikku",
     "an empty cell: the Wald interval is undefined, see the exact conditional interval"),
    ("separation", "eraldumine: hinnangud jooksevad lõpmatusse", "separation: estimates run off to infinity"),
    ("constant_item", "konstantne küsimus jäeti alfast välja", "a constant item was dropped from alpha"),
    ("negative_item_total", "negatiivne küsimuse-koguskoori korrelatsioon: kas pööratud küsimus on märkimata?",
     "negative item-total correlation: an undeclared reverse-keyed item?"),
    ("two_items", "kaks küsimust: alfa küsimuse eemaldamisel pole määratud",
     "two items: alpha if an item is deleted is undefined"),
    ("not_estimable", "ei ole hinnatav", "not estimable"),
    ("profile_unbounded", "profiiltõepära vahemik on ühelt poolt piiramata (eraldumine)",
     "the profile-likelihood interval is unbounded on one side (separation)"),
    ("exact_enumeration_infeasible_monte_carlo", "täpne loendus on liiga suur: p-väärtus Monte Carlo meetodil",
     "exact enumeration too large: Monte Carlo p-value"),
    ("fewer_than_two_levels", "alla kahe kategooria: testi pole", "fewer than two levels: no test"),
)

#: Clusters below which a CR1 / z inference is flagged ``few_clusters`` (Cameron & Miller
#: 2015 put the trouble zone well above this; CR2 with Satterthwaite df is the remedy).
FEW_CLUSTERS_BELOW = 20


def warning_codes(value: object) -> list[str]:
    """The codes of a ``warning`` cell ('; '-separated; empty or NA gives [])."""
    if not isinstance(value, str) or not value:
        return []
    return [part.strip() for part in value.split(";") if part.strip()]


def label(code: str, lang: str = "en") -> str:
    """The label of a method or warning code (the code itself if unregistered)."""
    entry = METHODS.get(code) or WARNINGS.get(code)
    return entry.label(lang) if entry else code


def join_warnings(*codes: str | None) -> str | None:
    """'; '-join the non-empty codes, without repeats; None if there are none."""
    seen = list(dict.fromkeys(c for code in codes for c in warning_codes(code)))
    return "; ".join(seen) if seen else None
