"""reproscope: reproduce ML model evaluations from declarative manifests."""

__version__ = "0.1.0"
