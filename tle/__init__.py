"""Real element sets shipped with orbitfl (data only; see SOURCES.md for provenance)."""
