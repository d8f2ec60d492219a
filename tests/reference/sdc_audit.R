# Reference intervals for the linear-programming audit in pipelines/privacy/cells.py.
# Rerun: Rscript tests/reference/sdc_audit.R  (rewrites sdc_audit.json next to this file)
#
# Each suppressed cell is minimised and maximised with lpSolve::lp subject to the
# table's additivity (row and column totals) and cells >= 0: tau-ARGUS's audit.
library(lpSolve)
library(jsonlite)

out_file <- file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "sdc_audit.json")

# body: matrix of counts; hidden: logical matrix of suppressed body cells; margins published.
audit <- function(body, hidden) {
  idx <- which(hidden, arr.ind = TRUE)
  nv <- nrow(idx)
  A <- NULL; b <- NULL
  for (i in seq_len(nrow(body))) {
    row <- as.numeric(idx[, 1] == i)
    if (any(row > 0)) { A <- rbind(A, row); b <- c(b, sum(body[i, ]) - sum(body[i, !hidden[i, ]])) }
  }
  for (j in seq_len(ncol(body))) {
    col <- as.numeric(idx[, 2] == j)
    if (any(col > 0)) { A <- rbind(A, col); b <- c(b, sum(body[, j]) - sum(body[!hidden[, j], j])) }
  }
  lower <- upper <- numeric(nv)
  for (v in seq_len(nv)) {
    obj <- as.numeric(seq_len(nv) == v)
    lower[v] <- lp("min", obj, A, rep("=", nrow(A)), b)$objval
    upper[v] <- lp("max", obj, A, rep("=", nrow(A)), b)$objval
  }
  list(row = rownames(body)[idx[, 1]], column = colnames(body)[idx[, 2]], lower = lower, upper = upper)
}

# S4, tau-ARGUS manual: rows 1-2 suppressed, row 3 = (3, 3); row totals 7, 3, 6; column totals 9, 7.
s4 <- matrix(c(4, 2, 3, 3, 1, 3), nrow = 3, dimnames = list(c("r1", "r2", "r3"), c("c1", "c2")))
s4_hidden <- matrix(c(TRUE, TRUE, FALSE, TRUE, TRUE, FALSE), nrow = 3)

# R's HairEyeColor, females: Blond/Brown = 4 and Black/Green = 2 are under 5; the
# pattern below is what protect_table(threshold = 5) chooses (primary plus the smallest
# cells completing the rows and columns).
hec <- HairEyeColor[, , "Female"]
hec_hidden <- matrix(FALSE, nrow(hec), ncol(hec), dimnames = dimnames(hec))
hec_hidden["Blond", "Brown"] <- TRUE
hec_hidden["Black", "Green"] <- TRUE
hec_hidden["Blond", "Hazel"] <- TRUE
hec_hidden["Black", "Hazel"] <- TRUE
hec_hidden["Red", "Brown"] <- TRUE
hec_hidden["Red", "Green"] <- TRUE

res <- list(
  s4 = audit(s4, s4_hidden),
  hair_eye_female = c(audit(unclass(hec), hec_hidden), list(body = unclass(hec)))
)
writeLines(toJSON(res, digits = NA, pretty = TRUE), out_file)
