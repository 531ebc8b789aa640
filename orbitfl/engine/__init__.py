"""The engine that wires physics and learning together: the checks that need the data
(``prepare``), the computed physics (``world``), the one assembly point (``assemble``), the
mission's clock (``mission``), the learning side live and on resume (``learning``,
``replay``), and one run end to end (``runner``)."""
