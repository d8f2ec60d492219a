# Reference numbers for pipelines/privacy/disclosure.py.
# Rerun: Rscript tests/reference/sdc_risk.R  (rewrites sdc_risk.json next to this file)
#
# sdcMicro is not packaged for Debian and CRAN is unreachable here, so this script
# computes sdcMicro's definitions directly in base R: freqCalc's fk/Fk (missing keys as
# their own category, and sdcMicro's default alpha = 1 "missing matches any value" by a
# brute-force pairwise comparison), indivRisk(method = "approx") transcribed from
# sdcMicro's R/indivRisk.R, and distinct l-diversity. The toy example's published
# sdcMicro outputs (tests S1-S3) are checked here too, so the transcription is proven
# against sdcMicro itself before it is applied to R's `infert` data.
library(jsonlite)

out_file <- file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "sdc_risk.json")

compatible <- function(a, b) all(is.na(a) | is.na(b) | a == b)
same_key <- function(a, b) all((is.na(a) & is.na(b)) | (!is.na(a) & !is.na(b) & a == b))

frequencies <- function(keys, w, rule) {
  n <- nrow(keys)
  fk <- Fk <- numeric(n)
  m <- as.matrix(keys)
  for (i in seq_len(n)) {
    hit <- vapply(seq_len(n), function(j) if (rule == "matches_any") compatible(m[i, ], m[j, ]) else same_key(m[i, ], m[j, ]), logical(1))
    fk[i] <- sum(hit)
    Fk[i] <- sum(w[hit])
  }
  list(fk = fk, Fk = Fk)
}

indiv_risk_approx <- function(fk, Fk) {  # sdcMicro R/indivRisk.R, method = "approx"
  pk <- fk / Fk
  rk <- rep(0, length(fk))
  for (k in seq_along(fk)) {
    if (fk[k] > 2) rk[k] <- pk[k] / (fk[k] - (1 - pk[k]))
    if (fk[k] == 2) rk[k] <- (pk[k] / (1 - pk[k])) - (((pk[k] / (1 - pk[k]))^2) * log(1 / pk[k]))
    if (fk[k] == 1) rk[k] <- (pk[k] / (1 - pk[k])) * log(1 / pk[k])
  }
  TF <- fk == Fk
  rk[TF] <- 1 / fk[TF]
  rk
}

distinct_l <- function(keys, s) {
  id <- apply(as.matrix(keys), 1, function(r) paste(ifelse(is.na(r), "<NA>", r), collapse = "\r"))
  ave(seq_along(s), id, FUN = function(i) length(unique(na.omit(s[i]))))
}

# --- sdcMicro's toy example (tests/testthat/test_freqCalc.R, test_indivRisk.R) ---
toy <- data.frame(A = c(2, 3, 2, 2, 3, 3, 1, 2), B = c(3, 3, 3, 3, 3, 3, 4, 3), C = c(1, 3, 1, 2, 1, 1, 1, 1))
toy_w <- c(18, 45.5, 39, 17, 92, 8, 123.5, 51)
toy_f <- frequencies(toy, toy_w, "matches_any")
toy_rk <- indiv_risk_approx(toy_f$fk, toy_f$Fk)
stopifnot(all.equal(toy_f$fk, c(3, 1, 3, 1, 2, 2, 1, 3)))
stopifnot(all.equal(toy_f$Fk, c(108, 45.5, 108, 17, 100, 100, 123.5, 108)))
stopifnot(all.equal(toy_rk, c(0.01369863, 0.08579129, 0.01369863, 0.17707583, 0.01877883, 0.01877883, 0.03931625, 0.01369863), tolerance = 1e-7))
toy_na <- toy
toy_na$C <- c(1, 3, NA, 2, 1, 1, NA, 1)
toy_na_any <- frequencies(toy_na, toy_w, "matches_any")
stopifnot(all.equal(toy_na_any$fk, c(3, 1, 4, 2, 2, 2, 1, 3)))
toy_na_rk <- indiv_risk_approx(toy_na_any$fk, toy_na_any$Fk)
# sdcMicro test_indivRisk.R, "with missing" (there A[8] is missing too), weighted, approx, qual = 1:
toy_na2 <- toy_na
toy_na2$A[8] <- NA
toy_na2_any <- frequencies(toy_na2, toy_w, "matches_any")
toy_na2_rk <- indiv_risk_approx(toy_na2_any$fk, toy_na2_any$Fk)
stopifnot(all.equal(toy_na2_rk, c(0.013698630, 0.085791288, 0.010554090, 0.032466112, 0.009836066, 0.009836066, 0.039316254, 0.005973716), tolerance = 1e-7))
toy_na_own <- frequencies(toy_na, toy_w, "own_category")

# --- R's infert data: keys education, parity, induced; weight 1 + age / 10 ---
data(infert)
keys <- data.frame(education = as.character(infert$education), parity = infert$parity, induced = infert$induced)
keys$parity[seq(5, nrow(keys), by = 9)] <- NA
keys$induced[seq(7, nrow(keys), by = 13)] <- NA
w <- 1 + infert$age / 10
res <- list()
for (rule in c("own_category", "matches_any")) {
  f <- frequencies(keys, w, rule)
  res[[rule]] <- list(fk = f$fk, Fk = f$Fk, risk = indiv_risk_approx(f$fk, f$Fk))
}
res$l_case <- distinct_l(keys, infert$case)
res$l_spontaneous <- distinct_l(keys, infert$spontaneous)
res$toy_missing_own_category <- list(fk = toy_na_own$fk, Fk = toy_na_own$Fk, risk = indiv_risk_approx(toy_na_own$fk, toy_na_own$Fk))
res$toy_missing_matches_any <- list(fk = toy_na_any$fk, Fk = toy_na_any$Fk, risk = toy_na_rk)
res$toy_missing2_matches_any <- list(fk = toy_na2_any$fk, Fk = toy_na2_any$Fk, risk = toy_na2_rk)
res$note <- "infert: parity NA every 9th row from row 5, induced NA every 13th row from row 7 (1-based); weights 1 + age/10"
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_file)
