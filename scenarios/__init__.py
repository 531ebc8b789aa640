"""The scenario library, installed as ``orbitfl.scenarios`` (data only) so that
``orbitfl init`` can copy it for users who installed the wheel; see README.md here."""
