# Reference numbers for analyses/multiple_testing.py (tests/test_multiple_testing_r.py).
#
# Rerun from the repository root:  Rscript tests/reference/multiple_testing.R
# It rewrites tests/reference/multiple_testing.json. Packages: jsonlite.
#
# The family: Welch t-test p-values of every numeric column of datasets::mtcars by am
# (transmission), plus one missing p-value and one exact tie, so that NA handling (not in
# the family size m) and ties are covered; the p-values themselves are stored, and the
# adjusted ones by p.adjust with "BH", "holm" and "bonferroni".
suppressPackageStartupMessages(library(jsonlite))

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_path <- file.path(dirname(normalizePath(script)), "multiple_testing.json")

columns <- setdiff(names(mtcars), "am")
p <- sapply(columns, function(v) t.test(mtcars[[v]] ~ mtcars$am)$p.value)
p <- c(p, missing = NA, tie = unname(p["qsec"]))
out <- list(
  name = names(p), p = unname(p),
  BH = p.adjust(p, "BH"), holm = p.adjust(p, "holm"), bonferroni = p.adjust(p, "bonferroni"),
  versions = list(R = R.version.string)
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), out_path)
