"""The scenario: the typed model (``model.py``), strict YAML (``strict_yaml.py``), ``--set``
overrides, the schema walked for ``orbitfl schema``, the reference page and the catalogs
of ``orbitfl list``. The model's public names are importable from here."""

from orbitfl.scenario.model import (
    IN_MEMORY,
    ConstellationConfig,
    ContactsConfig,
    FederatedConfig,
    GroundStationsConfig,
    LinksConfig,
    ModelConfig,
    NetworkConfig,
    OnboardConfig,
    ReportConfig,
    Scenario,
    ScheduleConfig,
    Selection,
    Site,
    StrategyRef,
    file_sha256,
    load_scenario,
    scenario_from_mapping,
)

__all__ = ["IN_MEMORY", "ConstellationConfig", "ContactsConfig", "FederatedConfig",
           "GroundStationsConfig", "LinksConfig", "ModelConfig", "NetworkConfig",
           "OnboardConfig", "ReportConfig", "Scenario", "ScheduleConfig", "Selection", "Site",
           "StrategyRef", "file_sha256", "load_scenario", "scenario_from_mapping"]
