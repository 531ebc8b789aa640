"""Sweeps: many runs of one scenario's variants (``runner``) and their replicates' seeds
(``replicates``)."""
