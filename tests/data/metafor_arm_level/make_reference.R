# Reference values for metak's within-arm measures (MC: raw mean change, MN: raw mean),
# computed with R metafor's escalc(). Run from this folder:  Rscript make_reference.R
# Writes escalc_MC_MN.csv. Tests read the CSV; they never need R.
#
# metafor has no shipped data set with pre/post means and SDs per arm, so the arm summaries of
# two shipped two-group data sets (dat.normand1999, dat.curtis1998: means, SDs, sizes) are
# paired as if they were one arm measured twice: group 1 = follow-up, group 2 = baseline, n = n1i,
# with the pre-post correlation ri cycling through -0.3, 0, 0.25, 0.5, 0.8, 0.95. The formulas
# do not care where the numbers came from; the pairing gives 111 rows of realistic magnitudes.
suppressMessages(library(metafor))
library(metadat)

rows <- function(dat, source) {
  n <- nrow(dat)
  ri <- rep(c(-0.3, 0, 0.25, 0.5, 0.8, 0.95), length.out = n)
  out <- data.frame(
    source = source, row = seq_len(n),
    m_followup = dat$m1i, sd_followup = dat$sd1i,
    m_baseline = dat$m2i, sd_baseline = dat$sd2i,
    ni = dat$n1i, ri = ri
  )
  # MC from baseline and follow-up with the correlation ri
  mc <- escalc(measure = "MC", m1i = m_followup, m2i = m_baseline, sd1i = sd_followup,
               sd2i = sd_baseline, ni = ni, ri = ri, data = out)
  out$yi_MC <- as.numeric(mc$yi)
  out$vi_MC <- as.numeric(mc$vi)
  # MC from a reported change mean and change SD (metafor's documented way: m2i = 0, sd2i = 0,
  # ri = 0); here the change mean is m_followup and its SD sd_followup.
  zero <- rep(0, n)
  mcr <- escalc(measure = "MC", m1i = out$m_followup, m2i = zero, sd1i = out$sd_followup,
                sd2i = zero, ni = out$ni, ri = zero)
  out$yi_MC_reported <- as.numeric(mcr$yi)
  out$vi_MC_reported <- as.numeric(mcr$vi)
  # MN: the raw mean of the follow-up values
  mn <- escalc(measure = "MN", mi = m_followup, sdi = sd_followup, ni = ni, data = out)
  out$yi_MN <- as.numeric(mn$yi)
  out$vi_MN <- as.numeric(mn$vi)
  out
}

result <- rbind(rows(dat.normand1999, "dat.normand1999"), rows(dat.curtis1998, "dat.curtis1998"))
write.csv(result, "escalc_MC_MN.csv", row.names = FALSE)
cat("metafor", as.character(packageVersion("metafor")), "- wrote", nrow(result), "rows\n")
