"""Evaluation: how close simulated answers are to real people's."""
