"""converters/feature_engine."""
