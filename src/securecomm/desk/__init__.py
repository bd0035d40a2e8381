"""The detainer desk: an operational service for a jail (issue #7).

Intake of ICE detainers, the automatic decision under the jurisdiction's policy in force on
the day the detainer was received, case-by-case review, the hold clock, roles, an
append-only hash-chained audit log and the quarterly transparency report.

One concept per module: `db` (engine, SQLite pragmas, migrations), `models` (tables),
`security` (passwords, tokens, roles), `audit` (the hash chain), `service` (the desk's
work, calling the rules engine), `reports`, `api` (FastAPI routes) and `cli` (commands).
"""
