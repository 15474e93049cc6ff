"""Development tools for the feature job: not part of the package shipped to EMR (feature_store.zip)."""
