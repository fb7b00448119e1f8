"""Bayesian analysis of simulated against human distributions (PyMC, ArviZ), and plots."""
