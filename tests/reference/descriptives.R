# Reference numbers for analyses/descriptives.py, on datasets::mtcars and datasets::airquality.
# Rerun: Rscript tests/reference/descriptives.R  (rewrites descriptives.json beside this script)
suppressMessages(library(jsonlite))
here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))

# prop.test warns about its chi-square test for small counts; only its Wilson interval is used
wilson <- function(x, n) as.numeric(suppressWarnings(prop.test(x, n, correct = FALSE))$conf.int)

categorical <- list()
for (variable in c("am", "gear")) for (cyl in sort(unique(mtcars$cyl))) {
  values <- mtcars[[variable]][mtcars$cyl == cyl]
  for (level in sort(unique(mtcars[[variable]]))) {
    x <- sum(values == level)
    categorical[[length(categorical) + 1]] <- list(cyl = cyl, variable = variable, level = level,
      count = x, n = length(values), estimate = x / length(values), ci = wilson(x, length(values)))
  }
}

numeric <- list()
for (variable in c("Ozone", "Solar.R")) for (month in sort(unique(airquality$Month))) {
  all_values <- airquality[[variable]][airquality$Month == month]
  values <- all_values[!is.na(all_values)]
  tt <- t.test(values)
  q <- quantile(values, c(0.25, 0.5, 0.75), type = 7)
  numeric[[length(numeric) + 1]] <- list(Month = month, variable = variable, n = length(values),
    n_missing = sum(is.na(all_values)), mean = mean(values), sd = sd(values),
    std_error = unname(tt$stderr), ci = as.numeric(tt$conf.int),
    median = unname(q[2]), q1 = unname(q[1]), q3 = unname(q[3]), iqr = IQR(values, type = 7))
}

# multi-select: three 0/1 "options" on mtcars, by cyl
options <- data.frame(cyl = mtcars$cyl, vs = mtcars$vs, am = mtcars$am, carb_many = as.integer(mtcars$carb > 2))
multiselect <- list()
for (cyl in sort(unique(options$cyl))) for (option in c("vs", "am", "carb_many")) {
  values <- options[[option]][options$cyl == cyl]
  multiselect[[length(multiselect) + 1]] <- list(cyl = cyl, option = option, count = sum(values),
    n = length(values), ci = wilson(sum(values), length(values)))
}

write_json(list(datasets = c("datasets::mtcars", "datasets::airquality"), categorical = categorical,
                numeric = numeric, multiselect = multiselect),
           file.path(here, "descriptives.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null")
