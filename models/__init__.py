"""The project's models: one folder each (``pipeline.py`` + ``model.toml`` + ``data/``)."""
