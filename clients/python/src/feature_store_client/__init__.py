"""Client of the serverless-feature-store getFeatures HTTP API (see README.md)."""

from feature_store_client.client import MAX_IDS_PER_REQUEST, FeatureStoreClient, FeatureStoreError

__all__ = ["MAX_IDS_PER_REQUEST", "FeatureStoreClient", "FeatureStoreError"]
