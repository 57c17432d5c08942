"""Stage 8, workflows: the end-to-end demo on the built-in data."""
