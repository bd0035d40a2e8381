"""Turning simulated records and counts into the metrics people argue about."""
