"""Developer tools that write what the package ships (``python -m tools.<name>``); not
installed with kidaudit (``pyproject.toml`` packages only ``auditor*``)."""
