"""vs2mini: Visual Sparse Steering (VS2, VS2++, PASS) on CLIP with a top-k sparse autoencoder.

Wings: method (sae, sae_file, train, pass_loss, steer, retrieval, metrics), data (registry, images, archives, ood,
toyworld, download), clip (models, toyclip, pretrain, preprocess, features, depth), tables (result, run, main,
ablations, baselines, shift, registry), teach (notebook, plots, widgets, exercises, results_page); at the root
config, disk, paper, pipeline, cli. See CONTRIBUTING.md for what each does and which way imports run.
"""
__version__ = "0.1.0"
