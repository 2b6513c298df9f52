"""TensorFlow: facts.py (imported by planning) and runner.py (imports tensorflow)."""
