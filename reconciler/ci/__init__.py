"""Glue between reconciler and a CI service, run by the workflows, never by the CLI."""
