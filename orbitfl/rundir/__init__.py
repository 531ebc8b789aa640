"""Run directories: the one declaration of their tables and manifest (``columns``) and the
writer that refuses anything undeclared (``writer``)."""
