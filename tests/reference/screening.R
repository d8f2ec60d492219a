# Reference numbers for analyses/screening.py, on MASS::birthwt (outcome: low birth weight).
# Rerun: Rscript tests/reference/screening.R  (rewrites screening.json beside this script)
suppressMessages({library(MASS); library(pROC); library(jsonlite)})
here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))

d <- MASS::birthwt
d$ptl_any <- as.integer(d$ptl > 0)
d$any_flag <- as.integer(d$smoke == 1 | d$ht == 1 | d$ui == 1 | d$ptl_any == 1)
d$neg_lwt <- -d$lwt   # lower mother's weight = higher risk; the score is oriented "higher is riskier"

proportion <- function(x, n) list(
  count = x, n = n, estimate = x / n,
  wilson = as.numeric(prop.test(x, n, correct = FALSE)$conf.int),
  clopper_pearson = as.numeric(binom.test(x, n)$conf.int))
auc_reference <- function(score) {
  r <- roc(d$low, score, levels = c(0, 1), direction = "<", quiet = TRUE)
  ci <- ci.auc(r, method = "delong")
  list(auc = as.numeric(auc(r)), se = sqrt(var(r, method = "delong")), low = ci[[1]], high = ci[[3]])
}

out <- list(dataset = "MASS::birthwt", pROC_version = as.character(packageVersion("pROC")), flags = list(), scores = list())
for (f in c("smoke", "ht", "ui", "ptl_any", "any_flag")) {
  x <- d[[f]]; y <- d$low
  out$flags[[f]] <- list(
    prevalence = proportion(sum(y), length(y)),
    flag_rate = proportion(sum(x), length(x)),
    sensitivity = proportion(sum(x == 1 & y == 1), sum(y == 1)),
    specificity = proportion(sum(x == 0 & y == 0), sum(y == 0)),
    ppv = proportion(sum(x == 1 & y == 1), sum(x == 1)),
    npv = proportion(sum(x == 0 & y == 0), sum(x == 0)),
    auc = auc_reference(x))
}
for (s in c("neg_lwt", "age")) out$scores[[s]] <- auc_reference(d[[s]])
write_json(out, file.path(here, "screening.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null")
