"""What a study needs from outside: models, datasets, environments and their locks,
preprocessed caches."""
