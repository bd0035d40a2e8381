"""The Secure Communities pipeline, one module per stage in flow order (docs/design.md §1):
bookings → iafis → ident → lesc → issuance → jail → removal, with field arrests and the
other ICE routes (CAP, 287(g)) beside them, and `records`, where the counted people who branch
become records. Every stage keeps the contract of `state`; securecomm.model.simulation lists
them in order."""
