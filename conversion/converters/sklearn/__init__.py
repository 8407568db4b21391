"""converters/sklearn."""
