"""Layer 3, the model of Secure Communities: parameters with sources, the pipeline stages, the
simulation, the metric registry and the replication runner."""
