"""Run directories: the one declaration of their tables and manifest (``columns``), the
writer that refuses anything undeclared (``writer``) and the one reader, checked against the
same declaration (``reader``)."""
