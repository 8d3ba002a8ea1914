"""Where sales come from: a file, a landing folder, a Kaggle data set, invoice-level exports or the synthetic
generator, each read into the monthly contract (see segmentation.contract)."""
