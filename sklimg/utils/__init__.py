"""Utilities: input validation, estimator checks, discovery."""
