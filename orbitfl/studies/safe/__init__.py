"""The SAFE study (docs/safe-study.md): ``driver`` runs it, ``export`` keeps its compact
tables, ``report`` writes the page from them, ``bytes`` counts its payloads."""
