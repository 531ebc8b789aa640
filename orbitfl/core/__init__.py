"""The kernel: what every layer may use and what imports nothing else of orbitfl (one-line
input errors, input limits, option declarations, atomic writes, the cache folder, the land
mask, random streams, progress bars). tests/test_layering.py keeps it at the bottom."""
