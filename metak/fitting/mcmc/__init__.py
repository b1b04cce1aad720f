"""The MCMC engine: PyMC models compiled and sampled with nutpie, gated by ArviZ diagnostics."""
