"""Campaigns: a lab's test matrix (device x firmware x app version x scenario) analysed run by
run as Dask tasks, gathered into one Parquet dataset and one report (issue 16 items 3 and 4).

``model`` is pure (frozen dataclasses); ``manifest`` parses the YAML a loader reads at its edge;
``runner`` is the only module that talks to Dask; ``dataset`` writes the Parquet parts."""
