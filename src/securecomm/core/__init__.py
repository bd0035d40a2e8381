"""Layer 1, the ground everything stands on: the case schema and its enums, reading cases, places
and their shipped reference tables, strict YAML files. Imports nothing else of securecomm."""
