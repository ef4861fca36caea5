"""Datasets: download + verify, read image folders, transforms and the shared loader."""
