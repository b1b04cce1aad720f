# Reference values for metak's step-function selection model (metak/models/selection.py).
#
# Fits R metafor's selmodel(type = "stepfun") by maximum likelihood on public data sets and
# writes, under tests/data/reference/:
#   selmodel_data.csv     the effect sizes fitted (dataset, study, yi, vi), so tests need no R
#   selmodel_stepfun.csv  per case: the MLEs (mu, tau2, omega per p-value interval) with their
#                         standard errors, the maximised log-likelihood, and the ordinary ML
#                         random-effects fit (rma, method = "ML") with its log-likelihood
#
# Run from the repository root:  Rscript tests/reference_selmodel.R
# (Debian: apt-get install -y r-cran-metafor; produced with metafor 3.8-1, metadat 1.2-0.)
#
# The optimiser runs far tighter than metafor's default (reltol 1e-12 instead of ~1.5e-8) so that
# the stored MLEs are the maximum to well below the tests' tolerance, not optim's stopping noise.

suppressMessages(library(metafor))

out_dir <- file.path("tests", "data", "reference")
bcg <- read.csv(file.path(out_dir, "bcg_logRR.csv"))

datasets <- list(
  # Passive smoking and lung cancer (log odds ratios): metafor's own selmodel example.
  hackshaw1998 = dat.hackshaw1998[, c("study", "yi", "vi")],
  # Red-romance effect (SMDs): 81 studies, many just significant.
  lehmann2018 = data.frame(study = seq_len(nrow(dat.lehmann2018)),
                           yi = dat.lehmann2018$yi, vi = dat.lehmann2018$vi),
  # Writing-to-learn interventions (SMDs); the MLE weights are not monotone in p.
  bangertdrowns2004 = dat.bangertdrowns2004[is.finite(dat.bangertdrowns2004$yi),
                                            c("id", "yi", "vi")],
  # BCG vaccine (log risk ratios): benefit is a *negative* effect, so selection is on "less".
  bcg_logRR = bcg[, c("study", "yi", "vi")]
)
names(datasets$bangertdrowns2004)[1] <- "study"

cases <- list(
  list(case = "lehmann2018_default", dataset = "lehmann2018", alternative = "greater",
       steps = c(0.025, 0.05)),
  list(case = "bangertdrowns2004_default", dataset = "bangertdrowns2004",
       alternative = "greater", steps = c(0.025, 0.05)),
  list(case = "hackshaw1998_three_steps", dataset = "hackshaw1998", alternative = "greater",
       steps = c(0.025, 0.10, 0.50)),
  list(case = "bcg_less", dataset = "bcg_logRR", alternative = "less", steps = c(0.025, 0.50)),
  # MLE weights above 1 (less significant results *more* often published): uniform(0, U) only.
  list(case = "bcg_less_wide", dataset = "bcg_logRR", alternative = "less",
       steps = c(0.05, 0.50))
)

rows <- list()
add <- function(case, parameter, estimate, se = NA_real_) {
  rows[[length(rows) + 1]] <<- data.frame(
    case = case$case, dataset = case$dataset, alternative = case$alternative,
    steps = paste(case$steps, collapse = ";"), parameter = parameter,
    estimate = estimate, se = se
  )
}

for (case in cases) {
  dat <- datasets[[case$dataset]]
  ml <- rma(yi, vi, data = dat, method = "ML")
  sel <- selmodel(ml, type = "stepfun", steps = case$steps, alternative = case$alternative,
                  control = list(reltol = 1e-12, maxit = 10000))
  add(case, "mu", sel$beta[1], sel$se[1])
  add(case, "tau2", sel$tau2, sel$se.tau2)
  for (j in seq_along(sel$delta)) add(case, paste0("omega_", j), sel$delta[j], sel$se.delta[j])
  add(case, "ll", sel$ll)
  add(case, "k", sel$k)
  add(case, "rma_mu", ml$beta[1], ml$se)
  add(case, "rma_tau2", ml$tau2, ml$se.tau2)
  add(case, "rma_ll", as.numeric(logLik(ml)))
}

# Numbers with 17 significant digits: the doubles exactly, so the tests evaluate the same numbers.
data_rows <- do.call(rbind, lapply(names(datasets), function(name) {
  data.frame(dataset = name, study = datasets[[name]]$study,
             yi = sprintf("%.17g", datasets[[name]]$yi),
             vi = sprintf("%.17g", datasets[[name]]$vi))
}))
write.csv(data_rows, file.path(out_dir, "selmodel_data.csv"), row.names = FALSE)
values <- do.call(rbind, rows)
values$estimate <- sprintf("%.17g", values$estimate)
values$se <- ifelse(is.na(values$se), "", sprintf("%.17g", values$se))
write.csv(values, file.path(out_dir, "selmodel_stepfun.csv"), row.names = FALSE)
