"""vs2mini: Visual Sparse Steering (VS2, VS2++, PASS) on CLIP with a top-k sparse autoencoder.

Modules: profiles, data, clip, preprocess, features, cache, sae, trainer, steer, retrieval, prototype, metrics,
pipeline, reproduce, paper, depth, experiments, ood_datasets, plots, widgets, notebook, cli.
See CONTRIBUTING.md for what each does.
"""
__version__ = "0.1.0"
