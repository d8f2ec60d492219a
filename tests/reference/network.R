# Reference numbers for analyses/specialists.py's cooperation network measures, from R igraph.
# Rerun: Rscript tests/reference/network.R  (rewrites network.json beside this script)
# Two directed weighted graphs: "hand" (three sectors, one pair reported one way only) and
# "sectors" (six sectors, every ordered pair reported, weights from a fixed formula).
# Thresholded graph: the edges with weight >= threshold.
suppressMessages({library(igraph); library(jsonlite)})
here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))

graphs <- list(
  hand = list(threshold = 2, edges = data.frame(from = c("a", "b", "a", "c", "b"), to = c("b", "a", "c", "a", "c"),
                                                weight = c(4, 2, 1, 1, 3))),
  sectors = local({
    s <- c("child_protection", "education", "health", "police", "social", "youth")
    pairs <- expand.grid(from = seq_along(s), to = seq_along(s))
    pairs <- pairs[pairs$from != pairs$to, ]
    w <- 1 + ((pairs$from * 7 + pairs$to * 3) %% 9) / 2   # 1 .. 5 in steps of 0.5
    list(threshold = 3, edges = data.frame(from = s[pairs$from], to = s[pairs$to], weight = w))
  })
)

out <- list(igraph_version = as.character(packageVersion("igraph")), graphs = list())
for (name in names(graphs)) {
  spec <- graphs[[name]]
  full <- graph_from_data_frame(spec$edges, directed = TRUE)
  kept <- subgraph.edges(full, E(full)[weight >= spec$threshold], delete.vertices = FALSE)
  n <- vcount(kept)
  out$graphs[[name]] <- list(
    threshold = spec$threshold,
    edges = spec$edges,
    reciprocity = reciprocity(kept),                              # share of edges reciprocated
    edge_density = edge_density(kept),                            # edges / (n (n - 1))
    in_strength = as.list(strength(full, mode = "in", weights = E(full)$weight)),
    out_strength = as.list(strength(full, mode = "out", weights = E(full)$weight)),
    degree_centrality = as.list(degree(kept, mode = "all") / (n - 1))  # networkx degree_centrality
  )
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "network.json"))
