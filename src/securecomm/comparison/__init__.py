"""Layer 4, policies side by side: comparisons of a baseline and reforms over replications, and
their self-contained HTML report."""
