"""Embedded mode: the whole pipeline on one machine (`intake serve`), AWS emulated by moto."""
