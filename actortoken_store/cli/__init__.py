"""The ``actortoken-store`` command line: one module per command group."""
