# Reference numbers for analyses/scales.py, from psych and R's factanal on psych::bfi.
# Rerun: Rscript tests/reference/scales.R  (rewrites scales.json beside this script)
suppressMessages({library(psych); library(jsonlite)})
here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))

bfi <- psych::bfi
scales <- list(
  agree = list(items = c("A1", "A2", "A3", "A4", "A5"), reverse = c("A1"), min_answered = 0.6),
  conscientious = list(items = c("C1", "C2", "C3", "C4", "C5"), reverse = c("C4", "C5"), min_answered = 0.8),
  extraversion = list(items = c("E1", "E2", "E3", "E4", "E5"), reverse = c("E1", "E2"), min_answered = 0.5)
)
omega_total <- function(l) sum(l)^2 / (sum(l)^2 + sum(1 - l^2))

out <- list(dataset = "psych::bfi", psych_version = as.character(packageVersion("psych")),
            rownames_head = as.integer(head(rownames(bfi), 5)), scales = list())
for (name in names(scales)) {
  s <- scales[[name]]
  x <- bfi[, s$items]
  keyed <- x
  keyed[s$reverse] <- 1 + 6 - keyed[s$reverse]          # response range 1..6: reverse = min + max - x
  complete <- na.omit(keyed)                              # listwise deletion, as the Python code
  a <- psych::alpha(complete, check.keys = FALSE, warnings = FALSE)
  std_ci <- psych::alpha.ci(a$total$std.alpha, nrow(complete), length(s$items))
  fa_ml <- psych::fa(complete, nfactors = 1, fm = "ml")
  fact <- factanal(covmat = cor(complete), factors = 1, n.obs = nrow(complete),
                   control = list(opt = list(factr = 1, pgtol = 0, maxit = 10000)))
  l_fact <- as.numeric(fact$loadings); l_fact <- l_fact * sign(sum(l_fact))
  l_psych <- as.numeric(fa_ml$loadings); l_psych <- l_psych * sign(sum(l_psych))
  # scoring rule: mean of answered keyed items if at least ceiling(share * k) answered
  answered <- rowSums(!is.na(keyed))
  need <- ceiling(s$min_answered * length(s$items) - 1e-9)
  score <- ifelse(answered >= need, rowMeans(keyed, na.rm = TRUE), NA)
  keys <- ifelse(s$items %in% s$reverse, -1, 1)
  si <- psych::scoreItems(keys, x, totals = FALSE, impute = "none", min = 1, max = 6)
  out$scales[[name]] <- list(
    items = I(s$items), reverse = I(s$reverse), min_answered = s$min_answered,
    n_complete = nrow(complete),
    alpha_raw = a$total$raw_alpha, alpha_std = a$total$std.alpha, alpha_ase = a$total$ase,
    feldt_low = a$feldt$lower.ci[[1]], feldt_high = a$feldt$upper.ci[[1]],
    std_feldt_low = std_ci$lower.ci[[1]], std_feldt_high = std_ci$upper.ci[[1]],
    r_drop = as.list(setNames(a$item.stats$r.drop, s$items)),
    alpha_if_deleted = as.list(setNames(a$alpha.drop$raw_alpha, s$items)),
    loadings_factanal = l_fact, loadings_psych_fa_ml = l_psych,
    omega_total_factanal = omega_total(l_fact), omega_total_psych_fa_ml = omega_total(l_psych),
    score = score, score_scoreitems_no_missing = ifelse(answered == length(s$items), si$scores[, 1], NA),
    score_mean = mean(score, na.rm = TRUE), score_sd = sd(score, na.rm = TRUE), n_scored = sum(!is.na(score))
  )
}
write_json(out, file.path(here, "scales.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null")
