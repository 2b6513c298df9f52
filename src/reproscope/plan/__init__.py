"""The study: configs, manifests and their checks, and the jobs built from them."""
