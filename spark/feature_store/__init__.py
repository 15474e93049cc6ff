"""The Spark feature job of the serverless feature store: feature views, raw-file validation,
point-in-time features, and the offline (Delta Lake) and online (Cassandra/Keyspaces) writers."""
