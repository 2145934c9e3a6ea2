"""A local Heymarket-compatible API server (``reconciler sandbox``), SQLite-backed, with
injectable faults, so the tool can be tried and tested without an account.

It implements the documented contacts API and each point where the documentation is
silent and the client relies on a choice (page and batch caps, ordering, failed_contacts
codes, partial updates); the README lists them."""
