"""metak: Bayesian meta-analysis of continuous outcomes."""
