"""Importers: each turns one kind of input into records that gallery.importers.common writes."""
