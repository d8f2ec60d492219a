# Reference numbers for analyses/associations.py and analyses/multiple_testing.py, on MASS::birthwt.
# Rerun: Rscript tests/reference/associations.R  (rewrites associations.json beside this script)
suppressMessages({library(MASS); library(effectsize); library(jsonlite)})
here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))

d <- MASS::birthwt
# ordinal risk level: 0 = bwt >= 3000 g, 1 = 2500-2999 g, 2 = < 2500 g (the Python test builds the same)
d$risk <- ifelse(d$bwt < 2500, 2L, ifelse(d$bwt < 3000, 1L, 0L))
B <- 100000L

table_reference <- function(f, o) {
  tab <- table(d[[f]], d[[o]])
  chi <- suppressWarnings(chisq.test(tab, correct = FALSE))
  res <- list(chisq = unname(chi$statistic), df = unname(chi$parameter), chisq_p = chi$p.value,
              min_expected = min(chi$expected),
              cramers_v_raw = cramers_v(tab, adjust = FALSE)$Cramers_v,
              cramers_v_corrected = cramers_v(tab, adjust = TRUE)$Cramers_v)
  if (all(dim(tab) == 2)) {
    res$fisher_p <- fisher.test(tab)$p.value
  } else {
    set.seed(1)
    res$fisher_mc_p <- fisher.test(tab, simulate.p.value = TRUE, B = B)$p.value
    res$fisher_mc_B <- B
  }
  res
}
# 2x2 odds ratio: upper factor level vs lower, of the outcome's upper level
odds_reference <- function(f, o) {
  fit <- glm(reformulate(f, o), family = binomial, data = d)
  ci <- confint.default(fit)[f, ]
  tab <- table(factor(d[[f]], levels = c(1, 0)), factor(d[[o]], levels = c(1, 0)))
  ft <- fisher.test(tab)
  list(wald_or = exp(unname(coef(fit)[f])), wald_se_log_or = unname(sqrt(diag(vcov(fit)))[f]),
       wald_low = exp(ci[[1]]), wald_high = exp(ci[[2]]),
       cmle_or = unname(ft$estimate), cmle_low = ft$conf.int[1], cmle_high = ft$conf.int[2])
}
mw_reference <- function(upper, lower) {
  w <- wilcox.test(upper, lower, exact = FALSE, correct = TRUE)
  list(W = unname(w$statistic), p = w$p.value, rank_biserial = rank_biserial(upper, lower)$r_rank_biserial)
}
kendall_reference <- function(x, y) {
  k <- cor.test(x, y, method = "kendall", exact = FALSE)
  list(tau_b = unname(k$estimate), z = unname(k$statistic), p = k$p.value)
}

out <- list(dataset = "MASS::birthwt", risk_definition = "2 if bwt < 2500, 1 if bwt < 3000, else 0",
            binary = list(), ordinal = list())
for (f in c("smoke", "ht", "ui")) out$binary[[f]] <- c(table_reference(f, "low"), odds_reference(f, "low"))
for (f in c("race", "ptl")) out$binary[[f]] <- table_reference(f, "low")
for (f in c("ftv", "age", "lwt")) out$binary[[f]] <- mw_reference(d[[f]][d$low == 1], d[[f]][d$low == 0])
out$ordinal$smoke <- mw_reference(d$risk[d$smoke == 1], d$risk[d$smoke == 0])
for (f in c("race", "ptl")) out$ordinal[[f]] <- table_reference(f, "risk")
for (f in c("ftv", "lwt")) out$ordinal[[f]] <- kendall_reference(d[[f]], d$risk)

p <- c(0.01, 0.04, 0.03, NA, 0.04, 0.2, 0.9, 0.001, 0.0405)
out$p_adjust <- list(p = p, bh = p.adjust(p, method = "BH"))
write_json(out, file.path(here, "associations.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null")
