# Edge cases of issue 15 item 1: what R does, as the reference of tests/test_edge_cases.py.
# Rscript tests/reference/edge_cases.R > tests/reference/edge_cases.json
# R 4.x with psych, sandwich, jsonlite.
suppressPackageStartupMessages({library(psych); library(sandwich); library(jsonlite)})
sink(stderr())  # psych prints its advice with cat(): keep stdout for the JSON
out <- list()
catch <- function(expr) tryCatch({expr; "no error"}, error = function(e) conditionMessage(e))
warnings_of <- function(expr) {
  found <- character(0)
  value <- withCallingHandlers(expr, warning = function(w) {found <<- c(found, conditionMessage(w)); invokeRestart("muffleWarning")})
  list(value = value, warnings = found)
}

# 1. constant non-zero paired differences: t.test stops
pre <- c(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3)
out$t_test_constant <- list(pre = pre, post = pre + 0.1,
                            error = catch(t.test(pre + 0.1, pre, paired = TRUE)),
                            error_welch = catch(t.test(rep(1, 5), rep(0, 5))))

# 2. a constant item: psych::alpha drops it with a warning
items <- data.frame(i0 = c(1, 2, 3, 4, 5, 2, 3, 4, 5, 1, 3, 4),
                    i1 = c(2, 2, 3, 5, 5, 1, 3, 4, 4, 1, 2, 5),
                    i2 = c(1, 3, 3, 4, 4, 2, 2, 5, 5, 2, 3, 4),
                    flat = rep(3, 12))
res <- warnings_of(psych::alpha(items, check.keys = FALSE))
out$psych_constant_item <- list(data = as.list(items), raw_alpha = res$value$total$raw_alpha,
                                std_alpha = res$value$total$std.alpha,
                                raw_alpha_without = psych::alpha(items[, 1:3])$total$raw_alpha,
                                warnings = res$warnings)

# 3. an undeclared reverse-keyed item: psych warns of negative correlations
reverse <- transform(items[, 1:3], rev = pmin(pmax(6 - i0 + c(0, 0, 1, 0, -1, 0, 0, 1, 0, 0, 0, -1), 1), 5))
res <- warnings_of(psych::alpha(reverse, check.keys = FALSE))
out$psych_reverse_item <- list(data = as.list(reverse), raw_alpha = res$value$total$raw_alpha,
                               r_drop = as.list(setNames(res$value$item.stats$r.drop, rownames(res$value$item.stats))),
                               warnings = res$warnings)

# 4. two items: alpha, and alpha if an item is dropped
res <- warnings_of(psych::alpha(items[, 1:2], check.keys = FALSE))
out$psych_two_items <- list(data = as.list(items[, 1:2]), raw_alpha = res$value$total$raw_alpha,
                            alpha_drop = res$value$alpha.drop$raw_alpha, warnings = res$warnings)

# 5. DiD with one pilot and one comparison municipality: the cluster-robust variance is 0
set.seed(1)
change <- c(rnorm(12, 0.5), rnorm(12, 0))
did <- data.frame(change = change, pilot = rep(c(1, 0), each = 12), municipality = rep(c("A", "B"), each = 12))
fit <- lm(change ~ pilot, data = did)
out$did_two_clusters <- list(change = change, estimate = unname(coef(fit)[2]),
                             se_hc1 = sqrt(vcovCL(fit, cluster = ~municipality, type = "HC1")[2, 2]))

# 6. a zero cell: Wald interval of the sample OR, and fisher.test's conditional interval
table <- matrix(c(6, 4, 0, 10), 2, byrow = TRUE)
ft <- fisher.test(table)
out$zero_cell <- list(table = table, wald_log_or_se = sqrt(sum(1 / table)),
                      cmle = unname(ft$estimate), cmle_ci = as.numeric(ft$conf.int))

sink()
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE))
