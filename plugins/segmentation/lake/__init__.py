"""The lake: partitions with manifests on a local folder or GCS, written atomically and verified on read."""
