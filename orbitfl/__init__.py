"""orbitfl: a satellite-constellation network simulator with federated-learning workloads.

Subpackages: ``orbitfl.constellation`` (physics and the network engine), ``orbitfl.fl``
(learning), ``orbitfl.analysis`` (reading run directories, figures). The modules directly
in ``orbitfl`` read scenarios and wire the two worlds together.
"""

__version__ = "0.1.0"
