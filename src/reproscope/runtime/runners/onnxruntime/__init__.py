"""ONNX Runtime: facts.py (imported by planning) and runner.py (imports onnxruntime)."""
