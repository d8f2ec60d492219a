# Reference for personas/: latent class models fitted by an independent EM in base R.
#
# poLCA (Linzer & Lewis 2011), the canonical R implementation, is neither in Debian nor
# reachable on CRAN from this machine, so this script re-implements poLCA's algorithm
# (random starting probabilities, EM, stop when the log-likelihood changes by < 1e-10)
# in base R. Its log-likelihoods must equal the values poLCA published
# (shared/reference/polca/README.md), which the Python tests also check directly.
# From the best solution it computes what personas/ reports: information criteria,
# entropy R2, average posterior probability and odds of correct classification.
#
# Rerun: Rscript tests/reference/personas_lca.R   (rewrites personas_lca.json beside it)
suppressPackageStartupMessages(library(jsonlite))

script_dir <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))
polca_dir <- normalizePath(file.path(script_dir, "..", "..", "..", "shared", "reference", "polca"))

lca_em <- function(y, k, starts, seed, tol = 1e-10, maxiter = 20000) {
  # y: data.frame of integer codes 1..K_j with NA for missing (full-information likelihood)
  set.seed(seed)
  n <- nrow(y); p <- ncol(y)
  levels <- sapply(y, function(v) max(v, na.rm = TRUE))
  obs <- lapply(seq_len(p), function(j) outer(y[[j]], seq_len(levels[j]), "==") )
  best <- NULL
  for (s in seq_len(starts)) {
    probs <- lapply(levels, function(K) { m <- matrix(runif(k * K), k, K); m / rowSums(m) })
    w <- rep(1 / k, k)
    ll_old <- -Inf
    for (it in seq_len(maxiter)) {
      logj <- matrix(log(w), n, k, byrow = TRUE)
      for (j in seq_len(p)) {
        o <- obs[[j]]; o[is.na(o)] <- FALSE
        logj <- logj + (o * 1) %*% t(log(pmax(probs[[j]], 1e-300)))
      }
      peak <- apply(logj, 1, max)
      rowll <- peak + log(rowSums(exp(logj - peak)))
      post <- exp(logj - rowll)
      ll <- sum(rowll)
      w <- colMeans(post)
      for (j in seq_len(p)) {
        o <- obs[[j]]; seen <- !is.na(y[[j]]); o[!seen, ] <- FALSE
        num <- t(post) %*% (o * 1)
        den <- colSums(post[seen, , drop = FALSE])
        probs[[j]] <- num / den
      }
      if (abs(ll - ll_old) < tol) break
      ll_old <- ll
    }
    # log-likelihood and posteriors at the final parameters
    logj <- matrix(log(w), n, k, byrow = TRUE)
    for (j in seq_len(p)) {
      o <- obs[[j]]; o[is.na(o)] <- FALSE
      logj <- logj + (o * 1) %*% t(log(pmax(probs[[j]], 1e-300)))
    }
    peak <- apply(logj, 1, max)
    rowll <- peak + log(rowSums(exp(logj - peak)))
    ll <- sum(rowll)
    if (is.null(best) || ll > best$loglik) best <- list(loglik = ll, w = w, post = exp(logj - rowll))
  }
  order_ <- order(-best$w)
  best$w <- best$w[order_]; best$post <- best$post[, order_, drop = FALSE]
  best$npar <- (k - 1) + k * sum(levels - 1)
  best$n <- n
  best
}

summaries <- function(fit) {
  k <- length(fit$w); n <- fit$n
  post <- pmin(pmax(fit$post, 1e-15), 1 - 1e-15)
  en <- -sum(post * log(post))
  modal <- max.col(fit$post, ties.method = "first")
  avepp <- sapply(seq_len(k), function(c) mean(fit$post[modal == c, c]))
  occ <- (avepp / (1 - avepp)) / (fit$w / (1 - fit$w))
  bic <- -2 * fit$loglik + fit$npar * log(n)
  list(
    loglik = fit$loglik, n_parameters = fit$npar, n = n,
    AIC = -2 * fit$loglik + 2 * fit$npar, BIC = bic,
    aBIC = -2 * fit$loglik + fit$npar * log((n + 2) / 24),
    CAIC = -2 * fit$loglik + fit$npar * (log(n) + 1),
    ICL = bic + 2 * en,
    entropy_r2 = if (k > 1) 1 - en / (n * log(k)) else NA,
    class_shares = fit$w, average_posterior = avepp, odds_correct_classification = occ,
    modal_counts = tabulate(modal, k)
  )
}

carcinoma <- read.csv(file.path(polca_dir, "carcinoma.csv"))
gss82 <- read.csv(file.path(polca_dir, "gss82.csv"))
out <- list(
  carcinoma_3 = summaries(lca_em(carcinoma, 3, starts = 20, seed = 1)),
  carcinoma_2 = summaries(lca_em(carcinoma, 2, starts = 10, seed = 2)),
  gss82_3 = summaries(lca_em(gss82, 3, starts = 20, seed = 3))
)
write_json(out, file.path(script_dir, "personas_lca.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
