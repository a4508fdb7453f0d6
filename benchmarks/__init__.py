"""Speed and quality measurements of the course (figures, not tests).

Run each as a module from the repository root, e.g. ``python -m benchmarks.data_pipeline``;
``make benchmark`` runs the fast ones, ``make benchmark-long`` the full notebook run and the
sample-quality measurement.
"""
