# Reference numbers for analyses/survey.py (tests/test_survey.py).
#
# Rerun from the repository root:  Rscript tests/reference/survey.R
# It rewrites tests/reference/survey.json and the two data files it reads from the survey
# package (tests/reference/survey_apistrat.csv, survey_apiclus1.csv: the public California
# Academic Performance Index samples of survey's `api` data, a few columns). Packages
# (Debian r-cran-*): survey, jsonlite.
#
# Designs:
#   strat       apistrat, stratified by school type:   svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc)
#   strat_nofpc the same without the fpc (with-replacement variance)
#   clus1       apiclus1, one-stage cluster sample of districts: svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc)
#   stratclus   apistrat with districts as PSUs nested in strata, no fpc:
#               svydesign(id = ~dnum, strata = ~stype, weights = ~pw, nest = TRUE)
# Estimates: svyciprop(method = "logit") of sch.wide == "Yes" and, per school type (a
# subset design), of awards == "Yes"; svymean (api00, acs.k3 with na.rm = TRUE, sch.wide as proportions), svytotal
# (enroll, sch.wide), svyby(~api00, ~stype, svymean), svyglm(sch.wide ~ ell + meals + stype,
# quasibinomial; glm's convergence tightened to epsilon 1e-14: at the default 1e-8 the clus1
# SEs stop 1e-5 (relative) short of the converged fit), svychisq(~sch.wide + stype) and svychisq(~awards + stype) (statistic "F").
suppressPackageStartupMessages({library(survey); library(jsonlite)})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- dirname(normalizePath(script))

data(api)
keep <- c("snum", "dnum", "stype", "pw", "fpc", "api00", "acs.k3", "enroll", "meals", "ell",
          "sch.wide", "awards")
write.csv(apistrat[, keep], file.path(here, "survey_apistrat.csv"), row.names = FALSE, na = "")
write.csv(apiclus1[, keep], file.path(here, "survey_apiclus1.csv"), row.names = FALSE, na = "")

designs <- list(
  strat = svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat),
  strat_nofpc = svydesign(id = ~1, strata = ~stype, weights = ~pw, data = apistrat),
  clus1 = svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1),
  stratclus = svydesign(id = ~dnum, strata = ~stype, weights = ~pw, nest = TRUE, data = apistrat)
)

stat_block <- function(s) {
  ci <- confint(s)
  list(name = names(coef(s)), estimate = unname(coef(s)), std_error = unname(SE(s)),
       conf_low = unname(ci[, 1]), conf_high = unname(ci[, 2]))
}

out <- list()
for (key in names(designs)) {
  d <- designs[[key]]
  by <- svyby(~api00, ~stype, d, svymean)
  glm <- svyglm(I(sch.wide == "Yes") ~ ell + meals + stype, design = d, family = quasibinomial,
                control = glm.control(epsilon = 1e-14, maxit = 100))
  s <- coef(summary(glm))
  ci <- confint(glm)
  chisq <- function(f) {
    t <- svychisq(f, d, statistic = "F")
    list(statistic = unname(t$statistic), ndf = unname(t$parameter[1]), ddf = unname(t$parameter[2]),
         p_value = t$p.value)
  }
  out[[key]] <- list(
    mean_api00 = stat_block(svymean(~api00, d)),
    mean_acs_k3 = stat_block(svymean(~acs.k3, d, na.rm = TRUE)),
    mean_sch_wide = stat_block(svymean(~sch.wide, d)),
    total_enroll = stat_block(svytotal(~enroll, d)),
    total_sch_wide = stat_block(svytotal(~sch.wide, d)),
    by_stype = list(group = as.character(by$stype), estimate = unname(coef(by)), std_error = unname(SE(by))),
    glm = list(term = rownames(s), estimate = unname(s[, 1]), std_error = unname(s[, 2]),
               statistic = unname(s[, 3]), p_value = unname(s[, 4]), df = glm$df.residual,
               conf_low = unname(ci[, 1]), conf_high = unname(ci[, 2])),
    chisq_sch_wide_stype = chisq(~sch.wide + stype),
    chisq_awards_stype = chisq(~awards + stype),
    ciprop_sch_wide = as.numeric(attr(svyciprop(~I(sch.wide == "Yes"), d, method = "logit"), "ci")),
    ciprop_awards_by_stype = lapply(c("E", "H", "M"), function(s) {
      as.numeric(attr(svyciprop(~I(awards == "Yes"), subset(d, stype == s), method = "logit"), "ci"))
    }),
    degf = degf(d)
  )
}
out$versions <- list(R = R.version.string, survey = as.character(packageVersion("survey")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "survey.json"))
