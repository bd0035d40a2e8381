"""Layer 4, the model held against reality: published targets, the calibration fit and the
validation scorecard."""
