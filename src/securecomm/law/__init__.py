"""Layer 2, the law of detainers as data: the policy model, loader, the vectorised compiler and the
per-case evaluator, explanations, the hold clock, policy timelines and `decide`. The library of
policies, each with its cases, lives in `law/policies/`."""
