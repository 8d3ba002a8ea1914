"""The segmentation method: scaling and the autoencoder, clustering and noise assignment, baselines and gates,
drift, stability and segment ids, lifecycle rules, segment profiles and names, and the model registry."""
