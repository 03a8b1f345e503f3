"""Who may see what: users and their roles, jurisdictions (scopes) and small-count suppression
rules, sign-in throttling, wall devices and the audit log.

Imports ``geo.store``, ``geo.atlas`` and the basics; never the query, ingest or web layers."""
