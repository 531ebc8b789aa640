"""The work of CLI commands that are more than a call into the engine: ``orbitfl init``
(``init_cmd``) and ``orbitfl contacts`` (``contacts_report``)."""
