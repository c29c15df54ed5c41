"""Embedded mode: the whole pipeline on one machine (`intake serve`), on SQLite and files (`adapters`)."""
