"""Project datasets, used from the catalog like kedro-datasets."""
